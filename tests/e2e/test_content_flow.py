"""The content flow over HTTP: drafts, conditional edits, publishing, archiving, search."""

from __future__ import annotations

from typing import Any

from tests.e2e.api import Api, Member


async def test_draft_edit_publish_archive(api: Api, admin: Member) -> None:
    teacher = await api.member(admin, "edna", "teacher")
    created = await api.client.post(
        "/content",
        headers=teacher.auth,
        json={"title": "Long Division", "tags": ["Math", "division"], "metadata": {"grade": 4}},
    )
    assert created.status_code == 201
    draft = created.json()
    assert created.headers["Location"] == f"/content/{draft['id']}"
    assert (draft["slug"], draft["status"], draft["tags"]) == (
        "long-division",
        "draft",
        ["math", "division"],
    )
    assert draft["author_id"] == str(teacher.id)
    url = f"/content/{draft['id']}"
    tag = created.headers["ETag"]

    edited = await api.client.patch(
        url, headers={**teacher.auth, "If-Match": tag}, json={"body": "Step one: ..."}
    )
    assert edited.status_code == 200 and edited.json()["body"] == "Step one: ..."
    stale = await api.client.patch(
        url, headers={**teacher.auth, "If-Match": tag}, json={"body": "lost"}
    )
    assert stale.status_code == 412
    assert (await api.client.get(url, headers=teacher.auth)).json()["body"] == "Step one: ..."

    published = await api.client.post(f"{url}/publish", headers=teacher.auth)
    assert published.status_code == 200
    assert published.json()["status"] == "published" and published.json()["published_at"]
    twice = await api.client.post(f"{url}/publish", headers=teacher.auth)
    assert twice.status_code == 409 and twice.json()["error"] == "invalid_state"

    archived = await api.client.post(f"{url}/archive", headers=teacher.auth)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    frozen = await api.client.patch(url, headers=teacher.auth, json={"title": "New"})
    assert frozen.status_code == 409

    by_slug = await api.client.get("/content/by-slug/long-division", headers=teacher.auth)
    assert by_slug.status_code == 200 and by_slug.json()["id"] == draft["id"]


async def test_taken_slugs_are_suffixed_or_refused(api: Api, admin: Member) -> None:
    first = await api.draft(admin, "Photosynthesis")
    second = await api.draft(admin, "Photosynthesis")
    assert (first["slug"], second["slug"]) == ("photosynthesis", "photosynthesis-2")
    taken = await api.client.post(
        "/content", headers=admin.auth, json={"title": "Other", "slug": "photosynthesis"}
    )
    assert taken.status_code == 409 and taken.json()["field"] == "slug"


async def test_empty_drafts_cannot_be_published(api: Api, admin: Member) -> None:
    empty = await api.draft(admin, "Nothing yet", body="")
    response = await api.client.post(f"/content/{empty['id']}/publish", headers=admin.auth)
    assert response.status_code == 409 and response.json()["error"] == "invalid_state"
    assert "empty" in response.json()["message"]


async def test_students_draft_but_cannot_publish(api: Api, admin: Member) -> None:
    student = await api.member(admin, "bart")
    draft = await api.draft(student, "My essay")
    refused = await api.client.post(f"/content/{draft['id']}/publish", headers=student.auth)
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied"
    by_admin = await api.client.post(f"/content/{draft['id']}/publish", headers=admin.auth)
    assert by_admin.status_code == 200  # the publisher's role decides, not the author's


async def test_delete_content(api: Api, admin: Member) -> None:
    lesson = await api.draft(admin, "Temporary")
    url = f"/content/{lesson['id']}"
    assert (await api.client.delete(url, headers=admin.auth)).status_code == 204
    assert (await api.client.get(url, headers=admin.auth)).status_code == 404
    assert (await api.client.delete(url, headers=admin.auth)).status_code == 404


async def _search(api: Api, member: Member, **params: Any) -> dict[str, Any]:
    response = await api.client.get("/content", headers=member.auth, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_search_by_all_tags_with_offsets_and_cursors(api: Api, admin: Member) -> None:
    titles = []
    for n in range(7):
        api.clock.advance(seconds=1)  # newest first
        tags = ["python", "async"] if n % 2 == 0 else ["python"]
        titles.append((await api.draft(admin, f"Lesson {n}", tags=tags))["title"])
    await api.draft(admin, "Unrelated", tags=["cooking"])

    both = await _search(api, admin, tags=["python", "ASYNC"])
    assert [c["title"] for c in both["items"]] == ["Lesson 6", "Lesson 4", "Lesson 2", "Lesson 0"]

    newest_first = list(reversed(titles))
    first = await _search(api, admin, tags="python", limit=3)
    second = await _search(api, admin, tags="python", limit=3, skip=3)
    assert [c["title"] for c in first["items"] + second["items"]] == newest_first[:6]

    walked: list[str] = []
    cursor = None
    while True:
        page = await _search(
            api, admin, tags="python", limit=3, **({"cursor": cursor} if cursor else {})
        )
        walked += [c["title"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == newest_first

    both_ways = await api.client.get(
        "/content", headers=admin.auth, params={"cursor": first["next_cursor"] or "x", "skip": 1}
    )
    assert both_ways.status_code == 400 and both_ways.json()["field"] == "cursor"
    bogus = await api.client.get("/content", headers=admin.auth, params={"cursor": "bm9wZQ"})
    assert bogus.status_code == 400 and bogus.json()["field"] == "cursor"


async def test_search_by_type_difficulty_and_status(api: Api, admin: Member) -> None:
    quiz = await api.draft(admin, "Quiz", content_type="quiz", difficulty="advanced")
    await api.draft(admin, "Lesson")
    await api.client.post(f"/content/{quiz['id']}/publish", headers=admin.auth)

    assert [c["title"] for c in (await _search(api, admin, type="quiz"))["items"]] == ["Quiz"]
    hard = await _search(api, admin, difficulty="advanced", status="published")
    assert [c["title"] for c in hard["items"]] == ["Quiz"]
    assert (await _search(api, admin, status="archived"))["items"] == []
    wrong = await api.client.get("/content", headers=admin.auth, params={"type": "poem"})
    assert wrong.status_code == 422
