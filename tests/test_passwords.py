"""The password policy: at least 10 characters, more than one kind and a few different ones, not
common, not the username.

It is one function (``services.passwords``); the API, the web pages and the command line refuse
what it refuses (tests/api/test_accounts.py, tests/test_cli.py, tests/web/test_account.py). The
passwords the demo, the tests and the README hand out keep it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.demo.county import LOGINS
from services.errors import InvalidField
from services.passwords import (
    MIN_PASSWORD_LENGTH,
    check_password,
    common_passwords,
    password_problem,
)
from tests.conftest import PASSWORD

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(
    ("password", "said"),
    [
        # Too short.
        ("", "至少 10 个字符"),
        ("aaaaaaaa", "至少 10 个字符"),
        ("Xk9#mq2$L", "至少 10 个字符"),
        # One kind of character only.
        ("aaaaaaaaaa", "同一类字符"),
        ("abcdefghijkl", "同一类字符"),
        ("ABCDEFGHIJKL", "同一类字符"),
        ("1357924680", "同一类字符"),
        ("!@#$%^&*()_+", "同一类字符"),
        ("我的密码我的密码我的", "同一类字符"),
        # Hardly different characters.
        ("aaaaaaaaa1", "不同的字符太少"),
        ("abababab12", "不同的字符太少"),
        # Common, as they are or dressed up.
        ("password123", "常见"),
        ("Password123", "常见"),
        ("1qaz2wsx3edc", "常见"),
        ("1qaz@WSX3edc", "常见"),
        ("P@ssw0rd2026", "常见"),
        ("Admin@123456", "常见"),
        ("Aa123456789", "常见"),
        ("qwerty123456", "常见"),
        ("woaini1314", "常见"),
        ("5201314!!!!", "常见"),
        ("Dragon2026!", "常见"),
        ("２０２６ｐａｓｓｗｏｒｄ", "常见"),  # full-width, as a Chinese input method types it
    ],
)
def test_weak_passwords_are_refused_saying_why(password: str, said: str) -> None:
    problem = password_problem(password)

    assert problem is not None
    assert said in problem
    with pytest.raises(InvalidField) as refused:
        check_password(password, field="new_password")
    assert refused.value.error_code == "weak_password"
    assert refused.value.field == "new_password"
    assert refused.value.message == problem


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("zhangsan-2026", "zhangsan"),
        ("ZhangSan!2026", "zhangsan"),
        ("2026@Ｚｈａｎｇｓａｎ", "zhangsan"),
    ],
)
def test_the_username_with_digits_or_symbols_is_refused(password: str, username: str) -> None:
    problem = password_problem(password, username=username)

    assert problem is not None
    assert "用户名" in problem


@pytest.mark.parametrize(
    "password",
    [
        PASSWORD,
        "battery-staple-77",
        "Xk9#mq2$Lp",
        "7394-2851-6603",
        "summer-rain-over-2026",
        "河口乡2026年复核",
        "县域材料共享库-" * 120 + "1",
    ],
)
def test_good_passwords_pass(password: str) -> None:
    assert password_problem(password, username="east") is None


def test_the_common_password_list_ships_with_the_code() -> None:
    listed = common_passwords()

    assert len(listed) >= 10_000
    assert {"123456", "password", "qwerty", "1qaz2wsx", "woaini1314"} <= listed
    assert all(word == word.strip() and not word.startswith("#") for word in listed)
    assert MIN_PASSWORD_LENGTH == 10


def test_the_demo_passwords_keep_the_policy() -> None:
    for login in LOGINS:
        assert password_problem(login.password, username=login.username) is None, login


def test_the_passwords_in_the_readme_keep_the_policy() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    offered = re.findall(r"--password '([^'<]+)'", text) + re.findall(
        r"\| \w+ \| (demo-[\w-]+) \|", text
    )

    assert len(offered) >= 8
    for password in offered:
        assert password_problem(password) is None, password
