"""The Instagram seam: ``types`` (values and the Protocols the jobs and the planner use), ``parse`` (pure
parsers of the answers), ``adapter`` (instagrapi, the only importer of it), ``transport`` (HTTP plumbing)."""
