"""Error pages for the console, in the visitor's language; the API's errors stay JSON.

The API registers its handlers first (create_app); `init_errors` wraps each app-wide handler so
that a console request gets a page and any other request gets what it got before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from broker.errors import DomainError

log = logging.getLogger(__name__)


def _titles() -> dict[int, tuple[str, str]]:
    return {
        400: (_("请求有误"), _("这个请求无法处理，请返回上一页重试。")),
        401: (_("请先登录"), _("此页面需要登录后查看。")),
        403: (_("无权访问"), _("您没有查看此页面的权限。如需访问，请联系平台管理员。")),
        404: (_("页面不存在"), _("您要找的页面不存在或已被移除，请检查网址。")),
        405: (_("请求方式不被允许"), _("此页面不接受这种请求方式。")),
        413: (_("提交的内容过大"), _("提交的内容超过了平台允许的大小。")),
        500: (_("系统出错了"), _("平台出现内部错误，已记录在案，请稍后再试。")),
        503: (_("系统繁忙"), _("平台正忙，请稍后再试。")),
    }


def error_page(status: int, message: str | None = None) -> tuple[str, int]:
    titles = _titles()
    title, default = titles.get(status, titles[500] if status >= 500 else titles[400])
    return render_template("console/error.html", status=status, title=title, message=message or default), status


def _page_for(error: Exception) -> tuple[str, int]:
    if isinstance(error, CSRFError):
        return error_page(400, _("页面已过期或缺少安全校验（CSRF 令牌），提交未被接受。请刷新页面后重新提交。"))
    if isinstance(error, HTTPException):
        return error_page(error.code or 500)
    if isinstance(error, DomainError):
        return error_page(error.status_code, error.message if error.status_code not in (403, 404) else None)
    log.exception("Unhandled error on a console page")
    return error_page(500)


def init_errors(app: Flask, is_console_request: Callable[[], bool]) -> None:
    """Console requests get an error page; every other request keeps the handler it had."""
    app_handlers = app.error_handler_spec.setdefault(None, {})
    for code_handlers in app_handlers.values():
        for exception_class, handler in list(code_handlers.items()):
            code_handlers[exception_class] = _wrapped(handler, is_console_request)
    for exception_class in (HTTPException, DomainError, Exception):
        if exception_class not in app_handlers.get(None, {}):
            app.register_error_handler(exception_class, _wrapped(None, is_console_request))


def _wrapped(handler: Callable[[Any], Any] | None, is_console_request: Callable[[], bool]) -> Callable[[Any], Any]:
    def handle(error: Exception) -> Any:
        if is_console_request() or handler is None:
            return _page_for(error)
        return handler(error)

    handle.__name__ = getattr(handler, "__name__", "console_error")
    return handle
