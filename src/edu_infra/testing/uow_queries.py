"""Contract: every adapter evaluates queries alike (filters, null rules, order, pages, counts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from edu_domain.errors import ValidationError
from edu_domain.model import EducationalContent, Organization, User, UserRole
from edu_domain.query import F, Filter, Query
from edu_infra.testing.harness import Harness, new_user


class Users:
    """Five users whose fields exercise nulls, case, accents and ties."""

    def __init__(self, org: Organization, people: dict[str, User]) -> None:
        self.org = org
        self.by_name = people

    def ids(self, *names: str) -> list[Any]:
        return [self.by_name[name].id for name in names]


NINE = datetime(2026, 1, 1, 9, tzinfo=UTC)  # the ManualClock's start


async def _ids(harness: Harness, users: Users, query: Query) -> list[Any]:
    async with harness.uow(users.org) as uow:
        return [u.id for u in await uow.find(User, query)]


async def _id_set(harness: Harness, users: Users, flt: Filter) -> set[Any]:
    return set(await _ids(harness, users, Query.where(flt)))


# ---------------------------------------------------------------- filters


# ---------------------------------------------------------------- ordering


# ---------------------------------------------------------------- pages


ORDERINGS = [("full_name",), ("-last_login_at", "role"), ("role", "-full_name"), ()]


# ---------------------------------------------------------------- counts


# ---------------------------------------------------------------- stream


class QueriesContract:
    """The `UnitOfWork` contract: queries. Needs a `harness` fixture."""

    @pytest.fixture
    async def users(self, harness: Harness) -> Users:
        org = await harness.make_org()
        t0 = harness.clock.now()
        hour = timedelta(hours=1)
        spec: dict[str, dict[str, Any]] = {
            "zed": {"full_name": "Zed", "role": UserRole.TEACHER, "failed_login_count": 3,
                    "email_verified": True, "last_login_at": t0},
            "adam": {"full_name": "adam", "role": UserRole.STUDENT, "failed_login_count": 0,
                     "email_verified": False, "last_login_at": None},
            "anon": {"full_name": None, "role": UserRole.ADMIN, "failed_login_count": 1,
                     "email_verified": True, "last_login_at": t0 + hour},
            "emile": {"full_name": "Émile", "role": UserRole.STUDENT, "failed_login_count": 5,
                      "email_verified": False, "last_login_at": t0 - hour},
            "adam2": {"full_name": "Adam", "role": UserRole.TEACHER, "failed_login_count": 3,
                      "email_verified": False, "last_login_at": None},
        }  # fmt: skip
        people = {name: new_user(org, **fields) for name, fields in spec.items()}
        async with harness.uow(org) as uow:
            await uow.add_all(people.values())
            await uow.commit()
        harness.reset_recorders()
        return Users(org, people)

    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            (F("full_name").ne("Zed"), {"adam", "anon", "emile", "adam2"}),
            (F("full_name").eq("Zed"), {"zed"}),
            (F("full_name").in_(["Zed", "adam"]), {"zed", "adam"}),
            (F("full_name").is_null(), {"anon"}),
            (F("full_name").not_null(), {"zed", "adam", "emile", "adam2"}),
            (F("full_name").eq(None), {"anon"}),
            (F("full_name").ne(None), {"zed", "adam", "emile", "adam2"}),
            (F("full_name").lt("a"), {"zed", "adam2"}),
            (F("full_name").ge("a"), {"adam", "emile"}),
            (F("full_name").startswith("A"), {"adam2"}),
            (F("full_name").startswith("ad"), {"adam"}),
            (F("full_name").icontains("ADA"), {"adam", "adam2"}),
            (F("full_name").icontains("mil"), {"emile"}),
            (F("role").eq("teacher"), {"zed", "adam2"}),
            (F("role").in_([UserRole.ADMIN, "student"]), {"anon", "adam", "emile"}),
            (F("role").ne(UserRole.STUDENT), {"zed", "anon", "adam2"}),
            (F("email_verified").eq(True), {"zed", "anon"}),
            (F("failed_login_count").gt(1), {"zed", "emile", "adam2"}),
            (F("failed_login_count").le(1), {"adam", "anon"}),
            (F("last_login_at").lt(datetime(2026, 1, 1, 11, tzinfo=UTC)), {"zed", "anon", "emile"}),
            (F("last_login_at").ne(NINE), {"adam", "anon", "emile", "adam2"}),
            (F("role").eq("teacher") & F("failed_login_count").ge(3), {"zed", "adam2"}),
            (F("role").eq("admin") | F("full_name").startswith("Z"), {"anon", "zed"}),
            (
                (F("role").eq("teacher") | F("email_verified").eq(True)) & F("full_name").not_null(),
                {"zed", "adam2"},
            ),
        ],
        ids=lambda value: "" if isinstance(value, set) else None,
    )  # fmt: skip
    async def test_filters_follow_the_query_semantics(
        self, harness: Harness, users: Users, flt: Filter, expected: set[str]
    ) -> None:
        assert await _id_set(harness, users, flt) == set(users.ids(*expected))

    async def test_datetimes_compare_as_instants_whatever_their_offset(
        self, harness: Harness, users: Users
    ) -> None:
        nine_utc_in_plus_five = datetime(2026, 1, 1, 14, tzinfo=timezone(timedelta(hours=5)))
        assert await _id_set(harness, users, F("last_login_at").gt(nine_utc_in_plus_five)) == set(
            users.ids("anon")
        )
        assert await _id_set(harness, users, F("last_login_at").eq(nine_utc_in_plus_five)) == set(
            users.ids("zed")
        )

    async def test_contains_all_matches_content_having_every_tag(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        both = await harness.make_content(org, author, tags=("python", "async"))
        one = await harness.make_content(org, author, tags=("Python",))
        await harness.make_content(org, author, tags=())
        async with harness.uow(org) as uow:
            python = await uow.find(
                EducationalContent, Query.where(F("tags").contains_all(["python"]))
            )
            pair = await uow.find(
                EducationalContent, Query.where(F("tags").contains_all(["async", "python"]))
            )
        assert {c.id for c in python} == {both.id, one.id}
        assert [c.id for c in pair] == [both.id]

    async def test_strings_order_by_code_point_with_nulls_last(
        self, harness: Harness, users: Users
    ) -> None:
        ascending = await _ids(harness, users, Query().order_by("full_name"))
        descending = await _ids(harness, users, Query().order_by("-full_name"))
        assert ascending == users.ids("adam2", "zed", "adam", "emile", "anon")
        assert descending == users.ids("anon", "emile", "adam", "zed", "adam2")

    async def test_datetimes_order_with_nulls_first_when_descending(
        self, harness: Harness, users: Users
    ) -> None:
        ordered = await _ids(harness, users, Query().order_by("-last_login_at"))
        nulls = sorted(users.ids("adam", "adam2"), key=lambda i: i.int)
        assert ordered == [*nulls, *users.ids("anon", "zed", "emile")]

    async def test_enums_order_by_value_and_ties_by_id(
        self, harness: Harness, users: Users
    ) -> None:
        ordered = await _ids(harness, users, Query().order_by("role"))

        def by_id(*names: str) -> list[Any]:
            return sorted(users.ids(*names), key=lambda i: i.int)

        assert ordered == [*users.ids("anon"), *by_id("adam", "emile"), *by_id("zed", "adam2")]

    async def test_booleans_order_false_before_true(self, harness: Harness, users: Users) -> None:
        ordered = await _ids(
            harness, users, Query().order_by("email_verified", "-failed_login_count")
        )
        assert ordered == users.ids("emile", "adam2", "adam", "zed", "anon")

    async def test_first_returns_the_first_row_of_the_order(
        self, harness: Harness, users: Users
    ) -> None:
        async with harness.uow(users.org) as uow:
            top = await uow.first(User, Query().order_by("-failed_login_count"))
            none = await uow.first(User, Query.where(full_name="Nobody"))
        assert top is not None
        assert top.id == users.by_name["emile"].id
        assert none is None

    @pytest.mark.parametrize("ordering", ORDERINGS)
    async def test_offset_pages_partition_the_result(
        self, harness: Harness, users: Users, ordering: tuple[str, ...]
    ) -> None:
        query = Query().order_by(*ordering)
        everything = await _ids(harness, users, query)
        pages = [await _ids(harness, users, query.page(skip, 2)) for skip in (0, 2, 4, 6)]
        assert [len(p) for p in pages] == [2, 2, 1, 0]
        assert [i for page in pages for i in page] == everything

    @pytest.mark.parametrize("ordering", ORDERINGS)
    async def test_keyset_pages_partition_the_result(
        self, harness: Harness, users: Users, ordering: tuple[str, ...]
    ) -> None:
        query = Query().order_by(*ordering)
        everything = await _ids(harness, users, query)
        seen: list[Any] = []
        cursor = None
        async with harness.uow(users.org) as uow:
            for _ in range(10):
                page = await uow.find(User, query.after(cursor, limit=2))
                seen += [u.id for u in page]
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert seen == everything

    async def test_next_cursor_is_none_on_the_last_page(
        self, harness: Harness, users: Users
    ) -> None:
        async with harness.uow(users.org) as uow:
            unpaged = await uow.find(User)
            exact = await uow.find(User, Query().page(0, 5))
            more = await uow.find(User, Query().page(0, 4))
            offset_last = await uow.find(User, Query().page(4, 4))
        assert unpaged.next_cursor is None
        assert (len(exact), exact.next_cursor) == (5, None)
        assert len(more) == 4
        assert more.next_cursor is not None
        assert (len(offset_last), offset_last.next_cursor) == (1, None)

    async def test_an_offset_pages_cursor_continues_after_its_last_item(
        self, harness: Harness, users: Users
    ) -> None:
        query = Query().order_by("full_name")
        async with harness.uow(users.org) as uow:
            first = await uow.find(User, query.page(0, 2))
            rest = await uow.find(User, query.after(first.next_cursor, limit=10))
        assert [u.id for u in rest] == users.ids("adam", "emile", "anon")

    async def test_a_cursor_of_another_query_is_a_validation_error(
        self, harness: Harness, users: Users
    ) -> None:
        async with harness.uow(users.org) as uow:
            page = await uow.find(User, Query().order_by("full_name").page(0, 1))
            assert page.next_cursor is not None
            with pytest.raises(ValidationError):
                await uow.find(User, Query().order_by("-full_name").after(page.next_cursor, 1))
            with pytest.raises(ValidationError):
                await uow.find(
                    EducationalContent, Query().order_by("full_name").after(page.next_cursor, 1)
                )
            with pytest.raises(ValidationError):
                await uow.find(User, Query().order_by("full_name").after(page.next_cursor[:-3], 1))

    async def test_count_ignores_the_page(self, harness: Harness, users: Users) -> None:
        async with harness.uow(users.org) as uow:
            assert await uow.count(User, Query().page(3, 1)) == 5
            assert await uow.count(User, Query.where(role="student").page(0, 1)) == 2

    async def test_count_by_groups_sorted_by_key_with_measures(
        self, harness: Harness, users: Users
    ) -> None:
        async with harness.uow(users.org) as uow:
            groups = await uow.count_by(
                User,
                ["role"],
                measures={
                    "verified": F("email_verified").eq(True),
                    "struggling": F("failed_login_count").ge(3),
                },
            )
        assert [(g.key, g.count, dict(g.measures)) for g in groups] == [
            ((UserRole.ADMIN,), 1, {"verified": 1, "struggling": 0}),
            ((UserRole.STUDENT,), 2, {"verified": 0, "struggling": 1}),
            ((UserRole.TEACHER,), 2, {"verified": 1, "struggling": 2}),
        ]

    async def test_count_by_several_fields_with_a_filter(
        self, harness: Harness, users: Users
    ) -> None:
        async with harness.uow(users.org) as uow:
            groups = await uow.count_by(
                User, ["email_verified", "role"], Query.where(F("failed_login_count").ge(1))
            )
        assert [(g.key, g.count) for g in groups] == [
            ((False, UserRole.STUDENT), 1),
            ((False, UserRole.TEACHER), 1),
            ((True, UserRole.ADMIN), 1),
            ((True, UserRole.TEACHER), 1),
        ]

    async def test_count_by_puts_the_null_group_last(self, harness: Harness, users: Users) -> None:
        async with harness.uow(users.org) as uow:
            groups = await uow.count_by(User, ["last_login_at"])
        t0 = harness.clock.now()
        assert [(g.key, g.count) for g in groups] == [
            ((t0 - timedelta(hours=1),), 1),
            ((t0,), 1),
            ((t0 + timedelta(hours=1),), 1),
            ((None,), 2),
        ]

    async def test_count_by_of_nothing_is_an_empty_list(
        self, harness: Harness, users: Users
    ) -> None:
        async with harness.uow(users.org) as uow:
            assert await uow.count_by(User, ["role"], Query.where(full_name="Nobody")) == []

    @pytest.mark.parametrize(
        ("cls", "by", "measures"),
        [
            (User, ["no_such_field"], None),
            (User, [], None),
            (EducationalContent, ["tags"], None),
            (EducationalContent, ["metadata"], None),
            (User, ["role"], {"bad": F("no_such_field").eq(1)}),
            (User, ["role"], {"bad": F("failed_login_count").eq("three")}),
        ],
    )
    async def test_count_by_rejects_bad_groupings(
        self, harness: Harness, users: Users, cls: type[Any], by: list[str], measures: Any
    ) -> None:
        async with harness.uow(users.org) as uow:
            with pytest.raises(ValidationError):
                await uow.count_by(cls, by, measures=measures)

    async def test_stream_yields_every_row_in_order_across_batches(
        self, harness: Harness, users: Users
    ) -> None:
        query = Query().order_by("full_name")
        async with harness.uow(users.org) as uow:
            for batch_size in (1, 2, 5, 1000):
                streamed = [u.id async for u in uow.stream(User, query, batch_size=batch_size)]
                assert streamed == users.ids("adam2", "zed", "adam", "emile", "anon")

    async def test_stream_applies_the_filter_and_ignores_the_page(
        self, harness: Harness, users: Users
    ) -> None:
        query = Query.where(role="student").order_by("-full_name").page(0, 1)
        async with harness.uow(users.org) as uow:
            streamed = [u.id async for u in uow.stream(User, query, batch_size=1)]
        assert streamed == users.ids("emile", "adam")

    @pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
    async def test_stream_rejects_a_bad_batch_size(
        self, harness: Harness, users: Users, batch_size: Any
    ) -> None:
        async with harness.uow(users.org) as uow:
            with pytest.raises(ValidationError):
                async for _ in uow.stream(User, batch_size=batch_size):
                    pass
