"""Login, wrong password, lock-out, logout and CSRF in a real browser."""

from __future__ import annotations

import pytest

from tests.browser.conftest import LOCKOUT_USER, ROLE_USERS, SCREENSHOTS, login

pytestmark = pytest.mark.browser

WRONG = "not-the-password9"


def test_map_redirects_to_chinese_login(page) -> None:
    page.goto("/map")
    assert "/login" in page.url
    assert page.get_by_role("button", name="登录").is_visible()
    assert page.get_by_label("用户名").is_visible() and page.get_by_label("密码").is_visible()


def test_wrong_password_shows_chinese_error(page) -> None:
    login(page, ROLE_USERS["viewer"], WRONG)
    assert "/login" in page.url
    assert "用户名或密码错误" in page.locator(".wg-error").inner_text()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "login_error.png"))


def test_lockout_after_five_failures(page) -> None:
    for _ in range(4):
        login(page, LOCKOUT_USER, WRONG)
        assert "用户名或密码错误（连续 5 次错误将锁定账号" in page.locator(".wg-error").inner_text()
    login(page, LOCKOUT_USER, WRONG)
    assert "连续 5 次密码错误，账号已锁定" in page.locator(".wg-error").inner_text()
    login(page, LOCKOUT_USER)  # the right password no longer helps
    assert "已被锁定" in page.locator(".wg-error").inner_text()
    assert "/login" in page.url


def test_logout(logged_in_page) -> None:
    page = logged_in_page("admin")
    assert "管理员" in page.locator(".wg-user").inner_text()
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url("**/login")
    page.goto("/map")
    assert "/login" in page.url


def test_login_form_without_csrf_token_is_refused(page) -> None:
    page.goto("/login")
    page.evaluate("() => document.querySelector('input[name=csrf_token]').remove()")
    page.get_by_label("用户名").fill(ROLE_USERS["viewer"])
    page.get_by_label("密码").fill("grid2026plan")
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    assert "请求被拒绝：缺少安全令牌" in page.content()
    page.screenshot(path=str(SCREENSHOTS / "csrf_error.png"))
    page.goto("/map")
    assert "/login" in page.url
