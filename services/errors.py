"""The one exception tree of the domain; the API turns each into the JSON error shape.

Every error carries an HTTP-like status, a stable machine ``code`` and a Chinese ``message``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MaterialsError(Exception):
    """Base of every error the domain raises on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "请求无效"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.error_code = code or self.code
        self.details = details
        super().__init__(self.message)


class BadRequest(MaterialsError):
    status = 400
    code = "bad_request"
    default_message = "请求格式不正确"


class NotAuthenticated(MaterialsError):
    status = 401
    code = "not_authenticated"
    default_message = "未登录或登录已过期"


class Forbidden(MaterialsError):
    status = 403
    code = "forbidden"
    default_message = "无权执行此操作"


class NotFound(MaterialsError):
    status = 404
    code = "not_found"
    default_message = "未找到"


class Conflict(MaterialsError):
    status = 409
    code = "conflict"
    default_message = "与现有数据冲突"


class PayloadTooLarge(MaterialsError):
    status = 413
    code = "payload_too_large"
    default_message = "上传内容超过大小限制"


class UnsupportedType(MaterialsError):
    status = 415
    code = "unsupported_type"
    default_message = "不支持的文件类型"


class InvalidField(MaterialsError):
    status = 422
    code = "invalid_field"
    default_message = "字段取值无效"

    def __init__(self, field: str, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"field": field})
        self.field = field


class RateLimited(MaterialsError):
    status = 429
    code = "rate_limited"
    default_message = "请求过于频繁，请稍后再试"

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class BackendUnavailable(MaterialsError):
    status = 503
    code = "backend_unavailable"
    default_message = "后端服务暂不可用，请稍后重试"

    def __init__(self, backend: str, message: str | None = None) -> None:
        super().__init__(message or f"{backend} 暂不可用，请稍后重试", details={"backend": backend})
        self.backend = backend
