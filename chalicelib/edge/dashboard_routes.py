"""The operator's dashboard at /admin: server-rendered pages over the same services as the operator API."""

from __future__ import annotations

from chalice import Response
from pydantic import ValidationError

from chalicelib import errors, wiring
from chalicelib.domain import tokens
from chalicelib.domain.operator_sessions import SESSION_LIFETIME, FailedFilter
from chalicelib.edge import client_routes, models, page_headers, requests
from chalicelib.edge.dashboard_pages import LOGIN_COOKIE, SESSION_COOKIE, Dashboard, Visit, list_query, redirect, render
from chalicelib.services import admin, app_accounts, operations, operator_sessions, watching

dashboard = Dashboard(__name__)
_PAGE = 25
_ONBOARD_FIELDS = ("app_name", "email", "base_url", "website", "description")


@dashboard.page("/admin/login", signed_in=False)
def show_sign_in(visit: Visit) -> Response:
    login_token = tokens.new_csrf_token()
    cookie = visit.set_cookie(LOGIN_COOKIE, login_token, max_age=3600)
    return render(visit, "login.html", login_token=login_token, next=visit.query.get("next", ""),
                  error=None, headers={"Set-Cookie": cookie})  # fmt: skip


@dashboard.page("/admin/login", ("POST",), signed_in=False)
def sign_in(visit: Visit) -> Response:
    sent, expected = visit.form.get("login_token"), visit.cookie(LOGIN_COOKIE)
    if not sent or not expected or not tokens.same_secret(sent, expected):
        raise errors.Forbidden("the sign-in form is out of date; reload the page")
    try:
        key, client_ip = visit.form.get("key") or None, requests.client_ip(visit.request)
        config = wiring.configs().access
        session = operator_sessions.sign_in(key, client_ip, now=visit.now, config=config, deps=wiring.deps())
    except (errors.Unauthorized, errors.RateLimited) as refused:
        status = 429 if isinstance(refused, errors.RateLimited) else 401
        message = "Too many attempts; wait a minute." if status == 429 else "That is not the operator key."
        return render(visit, "login.html", status=status, login_token=sent, next=visit.form.get("next", ""),
                      error=message)  # fmt: skip
    operator_sessions.sign_out(visit.cookie(SESSION_COOKIE), deps=wiring.deps())
    cookie = visit.set_cookie(SESSION_COOKIE, session.id, max_age=int(SESSION_LIFETIME.total_seconds()))
    visit.form["back"] = visit.form.get("next", "")
    return redirect(visit.back("/admin"), {"Set-Cookie": cookie})


@dashboard.page("/admin/logout", ("POST",))
def sign_out(visit: Visit) -> Response:
    operator_sessions.sign_out(visit.cookie(SESSION_COOKIE), deps=wiring.deps())
    return redirect(visit.url("/admin/login"), {"Set-Cookie": visit.set_cookie(SESSION_COOKIE, "", max_age=0)})


@dashboard.page("/admin")
def show_overview(visit: Visit) -> Response:
    return render(visit, "overview.html", nav="overview", overview=admin.overview(now=visit.now, deps=wiring.deps()))


@dashboard.page("/admin/apps")
def list_apps(visit: Visit) -> Response:
    query = list_query(visit, default_sort="created_at", page_size=_PAGE)
    page = admin.list_page("apps", query, deps=wiring.deps())
    return render(visit, "apps.html", nav="apps", page=page, query=query)


@dashboard.page("/admin/apps/{app_id}")
def show_app(visit: Visit, app_id: str) -> Response:
    app, statuses = admin.app_detail(app_id, deps=wiring.deps())
    return render(visit, "app.html", nav="apps", app=app, statuses=statuses, notice=visit.query.get("notice"))


@dashboard.page("/admin/apps/{app_id}/delete")
def confirm_delete(visit: Visit, app_id: str) -> Response:
    app, statuses = admin.app_detail(app_id, deps=wiring.deps())
    removed = admin.repositories_removed_with(app_id, deps=wiring.deps())
    return render(visit, "delete.html", nav="apps", app=app, statuses=statuses, removed=removed)


@dashboard.page("/admin/apps/{app_id}/delete", ("POST",))
def delete_app(visit: Visit, app_id: str) -> Response:
    app_accounts.delete_app(app_id, deps=wiring.deps())
    return redirect(visit.url("/admin/apps", notice="deleted"))


@dashboard.page("/admin/apps/{app_id}/pause", ("POST",))
def pause_app(visit: Visit, app_id: str) -> Response:
    admin.pause(app_id, deps=wiring.deps())
    return redirect(visit.url(f"/admin/apps/{app_id}", notice="paused"))


@dashboard.page("/admin/apps/{app_id}/resume", ("POST",))
def resume_app(visit: Visit, app_id: str) -> Response:
    admin.resume(app_id, deps=wiring.deps())
    return redirect(visit.url(f"/admin/apps/{app_id}", notice="resumed"))


@dashboard.page("/admin/apps/{app_id}/retry-failed", ("POST",))
def retry_failed_of_app(visit: Visit, app_id: str) -> Response:
    batch_size = wiring.configs().sweeping.batch_size
    operation = admin.retry_failed(app_id, now=visit.now, batch_size=batch_size, deps=wiring.deps())
    return redirect(visit.url(f"/admin/operations/{operation.id}"))


@dashboard.page("/admin/apps/{app_id}/resync", ("POST",))
def resync_app(visit: Visit, app_id: str) -> Response:
    batch_size = wiring.configs().sweeping.batch_size
    operation = admin.resync_app(app_id, now=visit.now, batch_size=batch_size, deps=wiring.deps())
    return redirect(visit.url(f"/admin/operations/{operation.id}"))


@dashboard.page("/admin/apps/{app_id}/watches/{repository_id}")
def show_delivery_log(visit: Visit, app_id: str, repository_id: str) -> Response:
    page = requests.page(visit.request, default_limit=50)
    attempts = admin.watch_log(app_id, repository_id, limit=page.limit, before=page.before, deps=wiring.deps())
    return render(visit, "log.html", nav="apps", app_id=app_id, repository_id=repository_id, attempts=attempts,
                  limit=page.limit)  # fmt: skip


@dashboard.page("/admin/watches/{app_id}/{repository_id}/retry", ("POST",))
def retry_watch(visit: Visit, app_id: str, repository_id: str) -> Response:
    watching.retry(app_id, repository_id, deps=wiring.deps())
    return redirect(visit.back(f"/admin/apps/{app_id}"))


@dashboard.page("/admin/watches/{app_id}/{repository_id}/resync", ("POST",))
def resync_watch(visit: Visit, app_id: str, repository_id: str) -> Response:
    watching.resync(app_id, repository_id, deps=wiring.deps())
    return redirect(visit.back(f"/admin/apps/{app_id}"))


@dashboard.page("/admin/failed")
def list_failed(visit: Visit) -> Response:
    matching, offset = _failed_filter(visit.query), _offset(visit)
    page = admin.failed_page(matching, limit=_PAGE, offset=offset, deps=wiring.deps())
    return render(visit, "failed.html", nav="failed", page=page, matching=matching, offset=offset, limit=_PAGE)


@dashboard.page("/admin/failed/retry", ("POST",))
def retry_failed_matching(visit: Visit) -> Response:
    batch_size = wiring.configs().sweeping.batch_size
    matching = _failed_filter(visit.form)
    operation = admin.retry_failed_matching(matching, now=visit.now, batch_size=batch_size, deps=wiring.deps())
    return redirect(visit.url(f"/admin/operations/{operation.id}"))


@dashboard.page("/admin/repositories")
def list_repositories(visit: Visit) -> Response:
    query = list_query(visit, default_sort="created_at", page_size=_PAGE)
    page = admin.list_page("repositories", query, deps=wiring.deps())
    return render(visit, "repositories.html", nav="repositories", page=page, query=query)


@dashboard.page("/admin/repositories/{repository_id}/reset-circuit", ("POST",))
def reset_circuit(visit: Visit, repository_id: str) -> Response:
    admin.reset_circuit(repository_id, now=visit.now, deps=wiring.deps())
    return redirect(visit.back("/admin/repositories"))


@dashboard.page("/admin/operations")
def list_operations(visit: Visit) -> Response:
    recent = admin.recent_operations(limit=50, deps=wiring.deps())
    return render(visit, "operations.html", nav="operations", operations=recent)


@dashboard.page("/admin/operations/{operation_id}")
def show_operation(visit: Visit, operation_id: str) -> Response:
    operation = operations.show(operation_id, deps=wiring.deps())
    return render(visit, "operation.html", nav="operations", operation=operation)


@dashboard.page("/admin/operations/{operation_id}/cancel", ("POST",))
def cancel_operation(visit: Visit, operation_id: str) -> Response:
    operations.cancel(operation_id, now=visit.now, deps=wiring.deps())
    return redirect(visit.url(f"/admin/operations/{operation_id}"))


@dashboard.page("/admin/onboard")
def show_onboarding(visit: Visit) -> Response:
    return render(visit, "onboard.html", nav="onboard", values={}, problems={})


@dashboard.page("/admin/onboard", ("POST",))
def onboard_app(visit: Visit) -> Response:
    values = {name: visit.form.get(name, "").strip() for name in _ONBOARD_FIELDS}
    try:
        body = models.OnboardRequest.model_validate({name: value or None for name, value in values.items()})
        onboarded = client_routes.onboarded(body)
    except ValidationError as invalid:
        problems = {str(error["loc"][0]): error["msg"] for error in invalid.errors() if error["loc"]}
        return render(visit, "onboard.html", status=400, nav="onboard", values=values, problems=problems)
    except errors.InvalidInput as invalid:
        problems = {detail.field: detail.message for detail in invalid.details} or {"base_url": str(invalid)}
        return render(visit, "onboard.html", status=400, nav="onboard", values=values, problems=problems)
    return render(visit, "credentials.html", nav="onboard", onboarded=onboarded)


@dashboard.page("/admin/static/{name}", signed_in=False)
def serve_asset(visit: Visit, name: str) -> Response:
    return page_headers.asset(name)


def _failed_filter(values: object) -> FailedFilter:
    get = values.get  # type: ignore[attr-defined]
    return FailedFilter(app=get("app") or None, repository=get("repository") or None, error=get("error") or None)


def _offset(visit: Visit) -> int:
    raw = visit.query.get("offset", "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0
