"""Hand-built multipart/form-data bodies, byte for byte, for uploads a regular client would refuse.

One ``Multipart`` per boundary; its parts and forms are plain bytes to post or stream as they are.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Multipart:
    """Builds the parts and whole bodies of multipart forms delimited by ``boundary``."""

    boundary: bytes

    @property
    def content_type(self) -> str:
        return "multipart/form-data; boundary=" + self.boundary.decode()

    def part(
        self, disposition: bytes, content: bytes, *, content_type: bytes | None = None
    ) -> bytes:
        head = b"Content-Disposition: form-data; " + disposition + b"\r\n"
        if content_type is not None:
            head += b"Content-Type: " + content_type + b"\r\n"
        return b"--" + self.boundary + b"\r\n" + head + b"\r\n" + content + b"\r\n"

    def text_field(self, name: str, value: str | bytes) -> bytes:
        raw = value.encode() if isinstance(value, str) else value
        return self.part(b'name="' + name.encode() + b'"', raw)

    def file_part(
        self,
        content: bytes = b"hello",
        *,
        name: bytes = b"file",
        filename: bytes = b'filename="a.txt"',
        content_type: bytes | None = b"text/plain",
    ) -> bytes:
        """A file part; an empty ``filename`` leaves the filename parameter out altogether."""
        disposition = b'name="' + name + b'"' + (b"; " + filename if filename else b"")
        return self.part(disposition, content, content_type=content_type)

    def unfinished_file_part(self, *, filename: bytes = b'filename="a.txt"') -> bytes:
        """A file part's head: whatever is sent after it is file content."""
        return self.file_part(b"", filename=filename)[: -len(b"\r\n")]

    def form(self, *parts: bytes, closed: bool = True) -> bytes:
        """The parts in order, then the closing boundary unless ``closed`` is false."""
        return b"".join(parts) + (b"--" + self.boundary + b"--\r\n" if closed else b"")
