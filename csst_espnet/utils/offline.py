"""Keep ESPnet imports quiet and offline.

Importing ESPnet's preprocessor pulls in ``g2p_en``, which calls ``nltk.download`` at import
time. csst-espnet never uses those NLTK resources, and the machines it runs on are often offline,
where the attempt only prints network errors. The download is made quiet (its errors go to the
log at DEBUG level) before ESPnet is imported.
"""

import functools
import io
import logging


def quiet_nltk_download() -> None:
    """Make ``nltk.download`` quiet; a no-op when NLTK is not installed."""
    try:
        import nltk
    except ImportError:
        return
    if getattr(nltk.download, "_csst_quiet", False):
        return
    original = nltk.download

    @functools.wraps(original)
    def download(*args, **kwargs):
        kwargs.setdefault("quiet", True)
        errors = io.StringIO()
        kwargs.setdefault("print_error_to", errors)
        ok = original(*args, **kwargs)
        if errors.getvalue():
            logging.getLogger(__name__).debug("nltk.download%s (unused by csst-espnet): %s", args, errors.getvalue())
        return ok

    download._csst_quiet = True
    nltk.download = download
