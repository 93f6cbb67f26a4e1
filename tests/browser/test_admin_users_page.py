"""An admin manages users in the browser: create, change role, disable, reset password; also on a phone."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import SCREENSHOTS, login

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _row(page, username: str):
    return page.locator(f'#wg-users tr[data-username="{username}"]')


def test_admin_creates_changes_and_disables_a_user(logged_in_page, browser, live_server) -> None:
    page = logged_in_page("admin")
    page.locator(".wg-nav a", has_text="用户管理").click()
    page.wait_for_url("**/admin/users")
    form = page.locator("#wg-create-user")
    form.get_by_label("用户名").fill("b_new")
    form.get_by_label("姓名").fill("新网格员")
    form.get_by_label("角色").select_option("worker")
    form.get_by_label("初始密码").fill("patrol2026x")
    with page.expect_navigation():
        form.get_by_role("button", name="创建").click()
    assert "已创建用户 b_new（网格员）" in page.locator(".wg-msg-ok").inner_text()
    row = _row(page, "b_new")
    assert "新网格员" in row.inner_text() and row.locator(".wg-last-login").inner_text() == "—"
    row.get_by_label("b_new 的角色").select_option("viewer")
    with page.expect_navigation():
        row.get_by_role("button", name="改角色").click()
    assert _row(page, "b_new").get_by_label("b_new 的角色").input_value() == "viewer"
    with page.expect_navigation():
        _row(page, "b_new").get_by_role("button", name="停用").click()
    assert "已停用" in _row(page, "b_new").locator(".wg-state").inner_text()
    with page.expect_navigation():
        _row(page, "b_new").get_by_role("button", name="启用").click()
    _row(page, "b_new").get_by_label("b_new 的新密码").fill("fresh2026pw")
    with page.expect_navigation():
        _row(page, "b_new").get_by_role("button", name="重置密码").click()
    assert "已重置密码：b_new" in page.locator(".wg-msg-ok").inner_text()
    # the new password works, and the login shows up as the user's last login
    other = browser.new_context(base_url=live_server.url)
    try:
        login(other.new_page(), "b_new", "fresh2026pw")
    finally:
        other.close()
    page.reload()
    assert _row(page, "b_new").locator(".wg-last-login").inner_text() != "—"
    # the last admin cannot demote themself: the reason is on the page
    me = _row(page, "b_admin")
    me.get_by_label("b_admin 的角色").select_option("viewer")
    with page.expect_navigation():
        me.get_by_role("button", name="改角色").click()
    assert "唯一启用的管理员" in page.locator(".wg-msg-error").inner_text()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin_users.png"), full_page=True)


def test_user_admin_works_on_a_phone(page) -> None:
    login(page, "b_admin")
    page.set_viewport_size(PHONE)
    page.goto("/admin/users")
    for locator in (page.locator("#wg-create-user").get_by_label("用户名"),
                    page.locator("#wg-create-user").get_by_role("button", name="创建"),
                    _row(page, "b_viewer").get_by_role("button", name="停用")):
        locator.scroll_into_view_if_needed()
        assert locator.is_visible()
        box = locator.bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"] + 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.screenshot(path=str(SCREENSHOTS / "admin_users_phone.png"), full_page=True)


def test_non_admins_have_no_user_admin(logged_in_page) -> None:
    page = logged_in_page("planner")
    assert page.locator(".wg-nav a", has_text="用户管理").count() == 0
    assert page.locator(".wg-nav a", has_text="导入数据").count() == 1
    response = page.goto("/admin/users")
    assert response.status == 403 and "没有权限" in page.content()


def test_audit_log_speaks_chinese_and_filters_on_a_phone(page) -> None:
    """The audit log showed raw codes (auth.login, user.set_role): now Chinese labels, filters and pages."""
    login(page, "b_admin")
    page.set_viewport_size(PHONE)
    page.goto("/register/audit")
    cells = page.locator(".wg-audit-table td[data-action]")
    assert cells.count() > 0
    codes = cells.evaluate_all("els => els.map(e => [e.dataset.action, e.innerText])")
    for code, shown in codes:
        assert code not in shown and re.search(r"[\u4e00-\u9fff]", shown), (code, shown)
    page.get_by_label("操作").select_option("auth.login")
    page.get_by_role("button", name="筛选", exact=True).click()
    page.wait_for_url("**action=auth.login*")
    assert set(page.locator(".wg-audit-table td[data-action]").all_inner_texts()) <= {"登录", "登录失败",
                                                                                   "登录被拒（账号已锁定）",
                                                                                   "登录被拒（尝试过于频繁）",
                                                                                   "账号被锁定（多次密码错误）"}
    assert "共" in page.locator(".wg-pager").inner_text()
    page.get_by_label("用户").select_option("b_admin")
    page.get_by_role("button", name="筛选", exact=True).click()
    assert page.get_by_label("操作").input_value() == "auth.login"  # the filters stay filled in
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.screenshot(path=str(SCREENSHOTS / "audit_phone.png"), full_page=True)
