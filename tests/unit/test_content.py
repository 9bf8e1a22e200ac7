"""Content: drafts with unique slugs, updates, publishing rules, archive, search."""

from __future__ import annotations

import pytest

from edu_domain import (
    AlreadyExists,
    ConcurrencyConflict,
    InvalidState,
    NotFound,
    PermissionDenied,
    Query,
    ValidationError,
)
from edu_domain.model import (
    ContentPublished,
    ContentStatus,
    ContentType,
    DifficultyLevel,
    UserRole,
    uuid7,
)
from edu_domain.services import ContentSearch, NewContent, Scope
from tests.unit.conftest import World


async def teacher_scope(
    world: World, name: str = "teach", role: UserRole = UserRole.TEACHER
) -> Scope:
    teacher = (await world.user(name, role=role)).user
    return Scope(world.org.id, teacher.id)


async def test_create_draft_derives_a_unique_slug_from_the_title(world: World) -> None:
    scope = await teacher_scope(world)
    first = await world.core.content.create_draft(
        scope, NewContent(title="Intro to Python!", body="x")
    )
    second = await world.core.content.create_draft(
        scope, NewContent(title="Intro to Python", body="y")
    )
    third = await world.core.content.create_draft(
        scope, NewContent(title="Intro to Python", body="z")
    )
    assert [first.slug, second.slug, third.slug] == [
        "intro-to-python",
        "intro-to-python-2",
        "intro-to-python-3",
    ]
    assert first.status is ContentStatus.DRAFT and first.author_id == scope.actor_id
    odd = await world.core.content.create_draft(scope, NewContent(title="¿Qué?", body="x"))
    assert odd.slug == "que"
    symbols = await world.core.content.create_draft(scope, NewContent(title="!!!", body="x"))
    assert symbols.slug == "content"


async def test_explicit_slug_that_is_taken_is_already_exists(world: World) -> None:
    scope = await teacher_scope(world)
    await world.core.content.create_draft(scope, NewContent(title="A", slug="algebra"))
    with pytest.raises(AlreadyExists) as error:
        await world.core.content.create_draft(scope, NewContent(title="B", slug="algebra"))
    assert error.value.field == "slug"


async def test_same_slug_is_fine_in_another_organization(world: World) -> None:
    scope = await teacher_scope(world)
    other = await world.new_org()
    teacher2 = (await world.user("teach2", org=other, role=UserRole.TEACHER)).user
    a = await world.core.content.create_draft(scope, NewContent(title="Algebra"))
    b = await world.core.content.create_draft(
        Scope(other.id, teacher2.id), NewContent(title="Algebra")
    )
    assert a.slug == b.slug == "algebra"


async def test_tags_are_normalised_and_metadata_validated(world: World) -> None:
    scope = await teacher_scope(world)
    content = await world.core.content.create_draft(
        scope,
        NewContent(title="T", tags=["Python", " python", "Data Science"], metadata={"level": 2}),
    )
    assert content.tags == ("python", "data-science")
    for bad in (
        NewContent(title="T", tags=["no,commas"]),
        NewContent(title="T", tags=["x" * 41]),
        NewContent(title="T", tags=[f"t{i}" for i in range(21)]),
        NewContent(title="T", metadata={"a": float("nan")}),
        NewContent(
            title="T", metadata={"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}
        ),
        NewContent(title="T", metadata={"big": "x" * 70_000}),
        NewContent(title="T", metadata={"nul": "a\x00"}),
        NewContent(title=""),
        NewContent(title="T", slug="Not A Slug"),
        NewContent(title="T", content_type="podcast"),
    ):
        with pytest.raises(ValidationError):
            await world.core.content.create_draft(scope, bad)
    assert await world.core.content.count(scope) == 1


async def test_draft_needs_an_author_of_this_organization(world: World) -> None:
    with pytest.raises(ValidationError):
        await world.core.content.create_draft(world.scope, NewContent(title="T"))
    with pytest.raises(NotFound):
        await world.core.content.create_draft(world.scope, NewContent(title="T", author_id=uuid7()))
    with pytest.raises(PermissionDenied):  # an actor who is no member does not act at all
        await world.core.content.create_draft(Scope(world.org.id, uuid7()), NewContent(title="T"))


async def test_publish_sets_published_at_and_emits_one_event(world: World) -> None:
    scope = await teacher_scope(world)
    draft = await world.core.content.create_draft(scope, NewContent(title="Lesson", body="Body"))
    world.clock.advance(hours=1)
    published = await world.core.content.publish(scope, draft.id)
    assert (
        published.status is ContentStatus.PUBLISHED and published.published_at == world.clock.now()
    )
    with pytest.raises(InvalidState):
        await world.core.content.publish(scope, draft.id)
    assert len(world.events.of_type(ContentPublished)) == 1


async def test_publish_refuses_an_empty_body(world: World) -> None:
    scope = await teacher_scope(world)
    draft = await world.core.content.create_draft(scope, NewContent(title="Empty", body="   "))
    with pytest.raises(ValidationError) as error:
        await world.core.content.publish(scope, draft.id)
    assert error.value.field == "body"
    assert (await world.core.content.get(scope, draft.id)).status is ContentStatus.DRAFT


async def test_publish_checks_the_callers_role_not_the_authors(world: World) -> None:
    kid = await teacher_scope(world, "kid", role=UserRole.STUDENT)
    teacher = await teacher_scope(world)
    admin = await teacher_scope(world, "boss", role=UserRole.ADMIN)
    draft = await world.core.content.create_draft(kid, NewContent(title="Essay", body="Mine"))
    for refused in (kid, teacher):  # a student may not publish; a teacher not others' drafts
        with pytest.raises(PermissionDenied):
            await world.core.content.publish(refused, draft.id)
    assert world.events.of_type(ContentPublished) == []
    assert (await world.core.content.publish(admin, draft.id)).status is ContentStatus.PUBLISHED
    assert len(world.events.of_type(ContentPublished)) == 1


async def test_archive_and_edits_after_archive(world: World) -> None:
    scope = await teacher_scope(world)
    draft = await world.core.content.create_draft(scope, NewContent(title="Old", body="b"))
    archived = await world.core.content.archive(scope, draft.id)
    assert archived.status is ContentStatus.ARCHIVED
    with pytest.raises(InvalidState):
        await world.core.content.archive(scope, draft.id)
    with pytest.raises(InvalidState):
        await world.core.content.update(scope, draft.id, {"title": "New"})
    with pytest.raises(InvalidState):
        await world.core.content.publish(scope, draft.id)


async def test_update_changes_fields_and_honours_expected_version(world: World) -> None:
    scope = await teacher_scope(world)
    draft = await world.core.content.create_draft(scope, NewContent(title="Draft", body="b"))
    updated = await world.core.content.update(
        scope,
        draft.id,
        {"title": "Final", "tags": ["A", "b"], "metadata": {"k": [1, 2]}, "difficulty": "advanced"},
        expected_version=draft.version,
    )
    assert (updated.title, updated.tags, updated.metadata) == ("Final", ("a", "b"), {"k": [1, 2]})
    assert updated.difficulty is DifficultyLevel.ADVANCED
    with pytest.raises(ConcurrencyConflict):
        await world.core.content.update(
            scope, draft.id, {"title": "X"}, expected_version=draft.version
        )
    with pytest.raises(ValidationError):
        await world.core.content.update(scope, draft.id, {"status": "published"})


async def test_get_by_slug_and_soft_delete_and_restore(world: World) -> None:
    scope = await teacher_scope(world)
    admin = await teacher_scope(world, "boss", role=UserRole.ADMIN)
    draft = await world.core.content.create_draft(scope, NewContent(title="Geometry"))
    assert (await world.core.content.get_by_slug(scope, "geometry")).id == draft.id
    assert await world.core.content.delete(scope, draft.id)
    with pytest.raises(NotFound):
        await world.core.content.get_by_slug(scope, "geometry")
    again = await world.core.content.create_draft(scope, NewContent(title="Geometry"))
    assert again.slug == "geometry"
    with pytest.raises(AlreadyExists):
        await world.core.content.restore(admin, draft.id)
    assert await world.core.content.delete(admin, again.id, hard=True)
    assert (await world.core.content.restore(admin, draft.id)).deleted_at is None
    with pytest.raises(NotFound):
        await world.core.content.get_by_slug(scope, "x" * 500)


async def test_search_by_tags_type_difficulty_status_with_pages(world: World) -> None:
    scope = await teacher_scope(world)
    specs = [
        ("Py basics", ["python", "basics"], ContentType.LESSON, DifficultyLevel.BEGINNER),
        ("Py async", ["python", "async"], ContentType.ARTICLE, DifficultyLevel.ADVANCED),
        ("Py quiz", ["python", "basics"], ContentType.QUIZ, DifficultyLevel.BEGINNER),
        ("Rust intro", ["rust", "basics"], ContentType.LESSON, DifficultyLevel.BEGINNER),
    ]
    ids = {}
    for title, tags, kind, level in specs:
        world.clock.advance(minutes=1)
        c = await world.core.content.create_draft(
            scope, NewContent(title=title, body="b", tags=tags, content_type=kind, difficulty=level)
        )
        ids[title] = c.id
    await world.core.content.publish(scope, ids["Py quiz"])
    tagged = await world.core.content.find_by_tags(scope, ["Python", "BASICS"])
    assert [c.title for c in tagged] == ["Py quiz", "Py basics"]
    lessons = await world.core.content.search(
        scope, ContentSearch(content_type="lesson", order_by=("title",))
    )
    assert [c.title for c in lessons] == ["Py basics", "Rust intro"]
    published = await world.core.content.search(
        scope, ContentSearch(status=ContentStatus.PUBLISHED)
    )
    assert [c.title for c in published] == ["Py quiz"]
    hard = await world.core.content.search(
        scope, ContentSearch(difficulty="advanced", text="ASYNC")
    )
    assert [c.title for c in hard] == ["Py async"]
    first = await world.core.content.search(scope, ContentSearch(tags=["basics"], limit=2))
    assert len(first) == 2 and first.next_cursor is not None
    rest = await world.core.content.search(
        scope, ContentSearch(tags=["basics"], limit=2, cursor=first.next_cursor)
    )
    assert [c.title for c in rest] == ["Py basics"] and rest.next_cursor is None
    with pytest.raises(ValidationError):
        await world.core.content.find_by_tags(scope, "python")
    with pytest.raises(ValidationError):
        await world.core.content.search(scope, ContentSearch(limit=0))
    assert await world.core.content.count(scope, Query.where(content_type="lesson")) == 2
    assert len(await world.core.content.find(scope, Query().page(0, 3))) == 3
