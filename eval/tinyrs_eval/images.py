"""Reading benchmark images: one RGB image or the reason it cannot be used (never a substitute image)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tinyrs_eval.imagecheck import truncation_problem


# Remote-sensing scenes can be very large: the original lifted PIL's decompression-bomb limit entirely (None). Here
# it is raised to MAX_IMAGE_PIXELS instead, and a file that claims more (a decompression bomb: a few bytes announcing
# gigapixels) is refused before decoding, so it becomes one error sample rather than an out-of-memory kill.
MAX_IMAGE_PIXELS = 2**30  # ~1.07 gigapixels (3.2 GB as RGB); DIOR/RSVQA-HR scenes are far below
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
MAX_ASPECT_RATIO = 200  # the Qwen2-VL image processor raises for a larger long/short side ratio


def size_problem(path: Path, width: int, height: int) -> str | None:
    """Why an image of this size is refused before decoding, or None."""
    if width * height > MAX_IMAGE_PIXELS:
        return f"image too large: {path}: {width}x{height} pixels > {MAX_IMAGE_PIXELS} (refused)"
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        return f"image aspect ratio above {MAX_ASPECT_RATIO}: {path}: {width}x{height}"
    return None


def load_image(path: Path) -> tuple[Image.Image | None, str | None]:
    """The RGB image, or None and the reason. Never a substitute image (the original used a black one, E10)."""
    try:
        with Image.open(path) as im:
            problem = size_problem(path, *im.size)
            if problem is not None:
                return None, problem
            return im.convert("RGB"), None
    except FileNotFoundError:
        return None, f"image not found: {path}"
    except Image.DecompressionBombError as exc:
        return None, f"image too large: {path}: {exc}"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        reason = f"image unreadable: {path}: {type(exc).__name__}: {exc}"
        try:
            truncated = truncation_problem(path)
        except OSError:
            truncated = None
        return None, reason + (f" ({truncated})" if truncated else "")
