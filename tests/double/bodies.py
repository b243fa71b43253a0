"""Instagram's error answers: ready-made bodies for ``InstagramDouble.fail(..., body=...)`` and the default body of
each status."""

from __future__ import annotations

from tests.double.common import JSON

# Ready-made error bodies for ``fail(..., body=...)``.
PLEASE_WAIT_BODY: JSON = {"message": "Please wait a few minutes before you try again.", "status": "fail"}
FEEDBACK_REQUIRED_BODY: JSON = {
    "message": "feedback_required",
    "spam": True,
    "feedback_title": "Try Again Later",
    "feedback_message": (
        "We restrict certain activity to protect our community. Tell us if you think we made a mistake."
    ),
    "feedback_url": "repute/report_problem/scraping/",
    "feedback_appeal_label": "Tell us",
    "feedback_ignore_label": "OK",
    "feedback_action": "report_problem",
    "status": "fail",
}
LOGIN_REQUIRED_BODY: JSON = {
    "message": "login_required",
    "error_title": "You've Been Logged Out",
    "error_body": "Please log back in.",
    "logout_reason": 2,
    "status": "fail",
}
NOT_AUTHORIZED_BODY: JSON = {"message": "Not authorized to view user", "status": "fail"}
USER_NOT_FOUND_BODY: JSON = {"message": "User not found", "status": "fail"}
MEDIA_UNAVAILABLE_BODY: JSON = {"message": "Media not found or unavailable", "status": "fail"}

_DEFAULT_ERROR_BODIES: dict[int, JSON] = {
    400: {"message": "Sorry, there was a problem with your request.", "status": "fail"},
    401: {"message": "Unauthorized", "status": "fail"},
    403: {"message": "Forbidden", "status": "fail"},
    404: {"message": "Page not found", "status": "fail"},
    408: {"message": "Request Timeout", "status": "fail"},
    429: {"message": "Too many requests", "status": "fail"},
    500: {"message": "Oops, an error occurred.", "status": "fail"},
    502: {"message": "Bad Gateway", "status": "fail"},
    503: {"message": "Service Unavailable", "status": "fail"},
}
