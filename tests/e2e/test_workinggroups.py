"""Working groups end to end: a member of a member organization finds a group, joins it, posts
in a discussion without a page reload (htmx), casts a vote, and sees the group on the dashboard;
then the same pages in English.

Locators use ids, names and form actions, never button texts (they change with the language).
"""

import pytest
from playwright.sync_api import expect

from apps.workinggroups.models import Ballot, GroupMember, Post
from tests.factories import PASSWORD
from tests.workinggroups.factories import (
    GroupMemberFactory,
    MeetingFactory,
    MotionFactory,
    ThreadFactory,
    WorkingGroupFactory,
    member_user,
)

pytestmark = pytest.mark.e2e


def submit(page, action: str):
    page.locator(f'main form[action="{action}"] button[type="submit"]:not([form])').click()


def login(page, base, email):
    page.goto(base + "/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    submit(page, "/accounts/login/")
    page.wait_for_url("**/dashboard/")


def test_member_joins_posts_and_votes(live_server, new_context, screenshot):
    base = live_server.url
    group = WorkingGroupFactory(
        slug="medical-ai",
        name_ja="医療AI分科会",
        name_en="Medical AI",
        charter_ja="医療画像 AI の知見を共有し、**国内データセンター**での学習指針をまとめる。",
        charter_en="Share know-how on medical imaging AI and write guidance for **domestic data centres**.",
        visibility="members_only",
        join_policy="open",
    )
    WorkingGroupFactory(slug="finance-ai", name_ja="金融AI分科会", name_en="Finance AI", industry="finance")
    chair = GroupMemberFactory(group=group, role="chair").user
    MeetingFactory(group=group, title="第3回 定例会")
    thread = ThreadFactory(group=group, author=chair, title="匿名加工データの共有ルール案")
    Post.objects.create(
        thread=thread, author=chair, body="たたき台を共有します。\n\n1. 共有範囲は分科会内に限定"
    )
    thread.post_count = 1
    thread.save()
    motion = MotionFactory(
        group=group, title="共有ルール案を第1版として承認する", options=["賛成", "反対", "棄権"]
    )
    person = member_user(user__full_name="佐藤 花子")

    page = new_context().new_page()
    login(page, base, person.email)

    # --- Directory and group page -------------------------------------------------------------
    page.locator('header a[href="/groups/"]').click()
    page.wait_for_url("**/groups/")
    expect(page.locator("main")).to_contain_text("医療AI分科会")
    screenshot(page, "directory-ja")
    page.select_option("#id_industry", "finance")
    expect(page.locator("#wg-results")).not_to_contain_text("医療AI分科会")
    expect(page.locator("#wg-results")).to_contain_text("金融AI分科会")
    page.goto(base + group.get_absolute_url())
    screenshot(page, "group-before-join-ja")

    # --- Join ------------------------------------------------------------------------------------
    submit(page, f"/groups/{group.slug}/join/")
    page.wait_for_load_state()
    expect(page.locator(f'form[action="/groups/{group.slug}/leave/"]')).to_be_visible()
    assert GroupMember.objects.filter(group=group, user=person).exists()
    screenshot(page, "group-after-join-ja")

    # --- Discussion: reply without reloading the page -------------------------------------------
    page.goto(base + thread.get_absolute_url())
    page.evaluate("window.__marker = 'no-reload'")
    page.fill("#id_body", "賛成です。**外部委託先**も範囲に含めましょう。")
    page.locator('#reply-form button[type="submit"]').click()
    expect(page.locator("#posts-list strong", has_text="外部委託先")).to_be_visible()
    assert page.evaluate("window.__marker") == "no-reload"
    expect(page.locator("#id_body")).to_have_value("")
    assert Post.objects.filter(thread=thread, author=person).count() == 1
    screenshot(page, "thread-after-reply-ja")

    # --- Vote ------------------------------------------------------------------------------------
    page.goto(base + motion.get_absolute_url())
    screenshot(page, "motion-ja")
    option = motion.options.get(label="賛成")
    page.check(f'#ballot-form input[value="{option.pk}"]')
    page.locator('#ballot-form button[type="submit"]').click()
    expect(page.locator("#ballot-box .wg-voted")).to_be_visible()
    assert Ballot.objects.filter(motion=motion, voter=person, option=option).count() == 1
    screenshot(page, "motion-voted-ja")

    # --- Dashboard: my groups --------------------------------------------------------------------
    page.goto(base + "/dashboard/")
    expect(page.locator("#my-working-groups")).to_contain_text("医療AI分科会")
    screenshot(page, "dashboard-ja")

    # --- The same pages in English ---------------------------------------------------------------
    page.select_option("#lang-select", "en")
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(base + group.get_absolute_url())
    expect(page.locator("main h1")).to_have_text("Medical AI")
    screenshot(page, "group-en")
    page.goto(base + thread.get_absolute_url())
    screenshot(page, "thread-en")
    page.goto(base + motion.get_absolute_url())
    screenshot(page, "motion-en")
    page.goto(base + f"/groups/{group.slug}/meetings/")
    screenshot(page, "meetings-en")
