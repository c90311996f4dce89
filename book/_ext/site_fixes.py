"""Every page of the book: a script declared twice is written once.

In this jupyter-book 1.x stack, sphinx-thebe's set-up runs twice per build, so every page declared
``const THEBE_JS_URL`` twice: a SyntaxError in the reader's browser on every page, which the site's
browser test (tests_site/) found. This Sphinx extension drops a page's inline script when the same
script is already on the page, before the page is written. Scripts loaded from a file are left
alone (Sphinx already writes each file once).
"""


def _dedupe_inline_scripts(app, pagename, templatename, context, doctree):
    scripts, seen, kept = context.get("script_files") or [], set(), []
    for script in scripts:
        inline = not getattr(script, "filename", "")
        body = script.attributes.get("body") if inline else None
        if body:
            if body in seen:
                continue
            seen.add(body)
        kept.append(script)
    if scripts:
        context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_inline_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
