"""Turn free text into URL-safe slugs."""

import re
import unicodedata

__version__ = "0.1.0"

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text, separator="-", max_length=None):
    """Lower-case ASCII slug of `text`: 'Buy Milk & Eggs!' -> 'buy-milk-eggs'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NON_WORD.sub(separator, ascii_text.lower()).strip(separator)
    if max_length is not None and len(slug) > max_length:
        slug = slug[:max_length].rstrip(separator)
    return slug
