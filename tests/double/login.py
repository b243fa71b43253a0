"""Sessions and the login flows: the CAA/Bloks login, the legacy one, TOTP two-factor, the session cookies
and bearer tokens (see the package docstring for the flows)."""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import string
import time
from typing import Any

from tests.double.common import JSON, _password_key, _rand, totp_code
from tests.double.server import Rec, _Reply
from tests.double.shapes import Shapes


class Login(Shapes):
    """Minting and checking sessions, and the login endpoints (no session needed)."""

    # ------------------------------------------------------------------ sessions & auth

    def _new_session(self) -> str:
        self.sessionid = (
            f"{self.own_pk}%3A{_rand(14)}%3A{secrets.randbelow(30) + 1}%3A"
            f"AY{_rand(40, string.ascii_letters + string.digits + '-_')}"
        )
        self.session_expired = False
        return self.sessionid

    def _new_rur(self) -> str:
        return f"RVA,{self.own_pk},{int(time.time()) + 31_536_000}:01f7{secrets.token_hex(34)}"

    def _quoted_rur(self) -> str:
        return '"' + self.rur.replace(",", "\\054") + '"'

    def _bearer(self, sessionid: str) -> str:
        payload = json.dumps({"ds_user_id": str(self.own_pk), "sessionid": sessionid}, separators=(",", ":"))
        return "Bearer IGT:2:" + base64.b64encode(payload.encode()).decode()

    @staticmethod
    def _cookie(name: str, value: str, max_age: int = 31_536_000) -> str:
        return f"{name}={value}; Domain=.instagram.com; Max-Age={max_age}; Path=/; Secure; HttpOnly"

    def _authenticated(self, rec: Rec) -> bool:
        """Bearer token if the request has one, else the ``sessionid`` cookie."""
        sessionid = None
        authorization = rec.headers.get("authorization", "")
        if authorization:
            try:
                token = authorization.rsplit(":", 1)[-1]
                sessionid = json.loads(base64.b64decode(token)).get("sessionid")
            except (ValueError, AttributeError):
                return False
        else:
            for part in rec.headers.get("cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "sessionid":
                    sessionid = value
        return bool(sessionid) and sessionid == self.sessionid and not self.session_expired

    def _challenge_body(self) -> JSON:
        path = f"/challenge/{self.own_pk}/{_rand(10)}/"
        return {
            "message": "challenge_required",
            "challenge": {
                "url": f"https://i.instagram.com{path}",
                "api_path": path,
                "hide_webview_header": True,
                "lock": True,
                "logout": False,
                "native_flow": True,
                "flow_render_type": 0,
            },
            "status": "fail",
            "error_type": "checkpoint_challenge_required",
        }

    def _password_ok(self, enc_password: str) -> bool:
        """Decrypt instagrapi's ``#PWD_INSTAGRAM:4:<ts>:<b64>`` (or plain ``:0:``) and compare."""
        parts = enc_password.split(":", 3)
        if len(parts) != 4 or parts[0] != "#PWD_INSTAGRAM":
            return False
        version, timestamp, payload = parts[1], parts[2], parts[3]
        if version == "0":
            return hmac.compare_digest(payload, self.password)
        try:
            from Cryptodome.Cipher import AES, PKCS1_v1_5

            blob = base64.b64decode(payload)
            iv, size = blob[2:14], int.from_bytes(blob[14:16], "little")
            rsa_part, tag, data = blob[16 : 16 + size], blob[16 + size : 32 + size], blob[32 + size :]
            session_key = PKCS1_v1_5.new(_password_key()).decrypt(rsa_part, None)
            if session_key is None:
                return False
            cipher = AES.new(session_key, AES.MODE_GCM, iv)
            cipher.update(timestamp.encode())
            plain = cipher.decrypt_and_verify(data, tag).decode()
        except (ValueError, KeyError, IndexError):
            return False
        return hmac.compare_digest(plain, self.password)

    def _code_ok(self, code: Any) -> bool:
        if not self.totp_seed:
            return False
        now = time.time()
        return any(str(code).strip() == totp_code(self.totp_seed, now + 30 * drift) for drift in (-1, 0, 1))

    def _login_headers(self, sessionid: str) -> dict[str, str]:
        return {
            "IG-Set-Authorization": self._bearer(sessionid),
            "ig-set-ig-u-rur": self.rur,
            "IG-Set-X-MID": self.mid,
            "x-ig-set-www-claim": self.www_claim,
            "IG-Set-Password-Encryption-Key-Id": str(self._key_id),
        }

    def _login_cookies(self) -> list[str]:
        return [
            self._cookie("csrftoken", self.csrftoken),
            self._cookie("ds_user_id", str(self.own_pk), 7_776_000),
            self._cookie("mid", self.mid),
            self._cookie("rur", self._quoted_rur()),
        ]

    def _logged_in_user(self) -> JSON:
        return {"logged_in_user": self._account_json(), "session_flush_nonce": None, "status": "ok"}

    # ------------------------------------------------------------------ login endpoints

    def _graphql_www(self, rec: Rec, match: re.Match[str]) -> _Reply:
        name = str(rec.form.get("fb_api_req_friendly_name", ""))
        if name != "IGUSDIDRegistrationMutation":
            return _Reply(404, {"message": f"Unknown graphql_www query {name!r}", "status": "fail"})
        return _Reply(200, {"data": {"xdt_usdid_registration": {"success": True}}, "extensions": {"is_final": True}})

    def _qe_sync(self, rec: Rec, match: re.Match[str]) -> _Reply:
        pem = _password_key().publickey().export_key(format="PEM")
        return _Reply(
            200,
            {"experiments": [], "status": "ok"},
            headers=[
                ("ig-set-password-encryption-key-id", str(self._key_id)),
                ("ig-set-password-encryption-pub-key", base64.b64encode(pem).decode()),
                ("ig-set-x-mid", self.mid),
            ],
        )

    def _launcher_sync(self, rec: Rec, match: re.Match[str]) -> _Reply:
        return _Reply(200, {"configs": {}, "status": "ok"})

    def _attestation(self, rec: Rec, match: re.Match[str]) -> _Reply:
        return _Reply(
            200,
            {
                "challenge_nonce": base64.b64encode(secrets.token_bytes(24)).decode(),
                "key_nonce": base64.b64encode(secrets.token_bytes(24)).decode(),
                "status": "ok",
            },
        )

    @staticmethod
    def _bloks_reply(action: str = "", data: list[JSON] | None = None, **extra: Any) -> _Reply:
        payload = {"tree": {"bk.components.Flexbox": {}}, "data": data or [], "action": action}
        return _Reply(200, {"layout": {"bloks_payload": payload}, **extra, "status": "ok"})

    def _bloks(self, rec: Rec, match: re.Match[str]) -> _Reply:
        name = match.group(2)
        try:
            params = json.loads(rec.form.get("params") or "{}")
        except ValueError:
            params = {}
        cip = params.get("client_input_params") or {}
        server = params.get("server_params") or {}
        if name == "com.bloks.www.bloks.caa.login.process_client_data_and_redirect":
            aac = json.dumps({"aac": _rand(32), "aac_init_timestamp": int(time.time())})
            node = {
                "id": _rand(6),
                "type": "gs",
                "data": {"key": "CAA_ACCOUNT_ACCESS_CONTEXT:aac", "initial": aac},
            }
            return self._bloks_reply(data=[node])
        if name == "com.bloks.www.caa.login.oauth.token.fetch.async":
            return self._bloks_reply()
        if name == "com.bloks.www.bloks.caa.login.async.send_login_request":
            return self._caa_send_login(cip)
        if name in (
            "com.bloks.www.two_step_verification.entrypoint",
            "com.bloks.www.two_step_verification.method_picker",
            "com.bloks.www.two_step_verification.method_picker.navigation.async",
        ):
            if server.get("two_step_verification_context") not in self._pending_2fa:
                return _Reply(400, {"message": "Invalid two-step verification context", "status": "fail"})
            return self._bloks_reply()
        if name == "com.bloks.www.two_step_verification.verify_code.async":
            context = server.get("two_step_verification_context")
            if context not in self._pending_2fa or not self._code_ok(cip.get("code")):
                return self._bloks_reply('(bk.action.core.TakeLast, (bk.action.caa.ShowError, "Invalid code"))')
            self._pending_2fa.discard(context)
            return self._caa_success()
        return _Reply(404, {"message": f"Unknown bloks app {name!r}", "status": "fail"})

    def _caa_send_login(self, cip: JSON) -> _Reply:
        user_ok = str(cip.get("contact_point", "")).lower() == self.username.lower()
        if not (user_ok and self._password_ok(str(cip.get("password", "")))):
            # Instagram routes failed CAA logins back to the legacy endpoint, which carries the reason.
            node = {"id": _rand(6), "type": "gs", "data": {"key": "CAA_LOGIN_FALLBACK:legacy", "initial": 1}}
            return self._bloks_reply('(bk.action.caa.login.Fallback, "accounts/login/")', data=[node])
        if self.challenge_required:
            return _Reply(400, self._challenge_body())
        if self.totp_seed:
            context = base64.b64encode(secrets.token_bytes(48)).decode()
            self._pending_2fa.add(context)
            app = '"com.bloks.www.two_step_verification.entrypoint"'
            action = (
                f"(bk.action.core.TakeLast, (bk.action.bloks.OpenScreen, {app}, "
                '(f4i (dkc "server_params") (dkc (f4i (dkc "two_step_verification_context" "flow_source") '
                f'(dkc {json.dumps(context)} "two_factor_login"))))))'
            )
            return self._bloks_reply(action, totp_two_factor_on=True, sms_two_factor_on=False)
        return self._caa_success()

    def _caa_success(self) -> _Reply:
        sessionid = self._new_session()
        embedded = {
            "login_response": json.dumps(self._logged_in_user()),
            "headers": json.dumps(self._login_headers(sessionid)),
            "cookies": "\r\n".join(f"Set-Cookie: {cookie}" for cookie in self._login_cookies()),
        }
        literal = json.dumps(json.dumps(embedded))  # a Bloks string literal holding the JSON object
        action = f"(bk.action.core.TakeLast, (bk.action.caa.HandleLoginResponse, {literal}))"
        return self._bloks_reply(action)

    def _legacy_success(self) -> _Reply:
        sessionid = self._new_session()
        headers = [
            ("ig-set-authorization", self._bearer(sessionid)),
            ("ig-set-ig-u-rur", self.rur),
            ("ig-set-x-mid", self.mid),
            ("x-ig-set-www-claim", self.www_claim),
        ]
        headers += [("Set-Cookie", cookie) for cookie in self._login_cookies()]
        return _Reply(200, self._logged_in_user(), headers=headers)

    def _accounts_login(self, rec: Rec, match: re.Match[str]) -> _Reply:
        if str(rec.form.get("username", "")).lower() != self.username.lower():
            return _Reply(
                400,
                {
                    "message": (
                        "The username you entered doesn't appear to belong to an account. "
                        "Please check your username and try again."
                    ),
                    "invalid_credentials": True,
                    "error_title": "Incorrect Username",
                    "error_type": "invalid_user",
                    "status": "fail",
                },
            )
        if not self._password_ok(str(rec.form.get("enc_password", ""))):
            return _Reply(
                400,
                {
                    "message": "The password you entered is incorrect. Please try again.",
                    "invalid_credentials": True,
                    "error_title": f"Incorrect password for {self.username}",
                    "buttons": [{"title": "Try Again", "action": "dismiss"}],
                    "error_type": "bad_password",
                    "status": "fail",
                },
            )
        if self.challenge_required:
            return _Reply(400, self._challenge_body())
        if self.totp_seed:
            identifier = _rand(36)
            self._pending_2fa.add(identifier)
            return _Reply(
                400,
                {
                    "message": "",
                    "two_factor_required": True,
                    "two_factor_info": {
                        "pk": self.own_pk,
                        "username": self.username,
                        "two_factor_identifier": identifier,
                        "totp_two_factor_on": True,
                        "sms_two_factor_on": False,
                        "whatsapp_two_factor_on": False,
                        "obfuscated_phone_number": "",
                    },
                    "error_type": "two_factor_required",
                    "status": "fail",
                },
            )
        return self._legacy_success()

    def _two_factor_login(self, rec: Rec, match: re.Match[str]) -> _Reply:
        identifier = rec.form.get("two_factor_identifier")
        if identifier not in self._pending_2fa or not self._code_ok(rec.form.get("verification_code")):
            return _Reply(
                400,
                {
                    "message": "Please check the security code and try again.",
                    "error_type": "sms_code_validation_code_invalid",
                    "status": "fail",
                },
            )
        self._pending_2fa.discard(identifier)
        if self.challenge_required:
            return _Reply(400, self._challenge_body())
        return self._legacy_success()
