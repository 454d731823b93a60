"""Mixes of a result's stems (`mixes`), and their credits: a mix's price is charged in the same
transaction that stores it and refunded at most once if it fails, under the mix's own ledger
key (`mix_id`, kinds 'mix_charge' / 'mix_refund'), never the job's (see `bot.mixing`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot import economy
from bot.leases import Lease
from bot.models import Job, KeepPlace, LedgerKind, Mix, MixState
from bot.store import accounts
from bot.store.accounts import Accounts
from bot.store.database import Database, Row, Tx

_TO_DO = "(state IN ('pending', 'working', 'posting') OR (state = 'posted' AND told = 0))"
"""Mixes with work left; the same condition as the partial index `mixes_to_do`."""


def _free_for(tx: Tx, shared: bool) -> str:
    """Mixes `?` (a holder) may work on: its own, nobody's, or those whose claim lapsed; on an
    SQLite file, any (one process uses it)."""
    if not shared:
        return "(claimed_by IS NULL OR claimed_by = ? OR TRUE)"
    return f"(claimed_by IS NULL OR claimed_by = ? OR COALESCE(lease_until, 0) < {tx.current_time})"


@dataclass(frozen=True, slots=True)
class MixAsked:
    """What storing a mix did: the mix (None: refused), whether this ask made it, and why not."""

    mix: Mix | None
    started: bool
    blocked: bool = False
    blocked_reason: str | None = None
    balance: int = 0
    refills_at: float | None = None  # refused for want of credits: when the allowance refills


@dataclass(frozen=True, slots=True)
class NewMix:
    job: Job
    stems: int
    requested_by: int
    role_ids: tuple[int, ...]
    price: int
    upload_limit: int
    filename: str
    reply_application_id: int | None = None
    reply_token: str | None = None
    reply_until: float | None = None


class Mixes:
    def __init__(self, db: Database, accounts: Accounts) -> None:
        self._db = db
        self._accounts = accounts

    async def request(self, new: NewMix) -> MixAsked:
        """Store the mix and take its price, in one transaction: the same stems of the same job
        already asked (and not failed) are that mix, not a new one, and cost nothing again. A
        blocked member, or one who cannot pay, stores nothing."""
        try:
            return await self._request(new)
        except _CannotPay as refused:  # the transaction rolled back: no mix stored
            return refused.asked

    async def _request(self, new: NewMix) -> MixAsked:
        async with self._db.transaction() as tx:
            now = self._db.now()
            job = new.job
            account, settings = await self._accounts.current(
                tx, job.guild_id, new.requested_by, role_ids=new.role_ids, now=now
            )
            if account.blocked:
                return MixAsked(None, False, blocked=True, blocked_reason=account.blocked_reason)
            row = await tx.fetchone(
                "INSERT INTO mixes (job_id, guild_id, stems, state, requested_by, price, upload_limit, "
                "filename, reply_application_id, reply_token, reply_until, created_at) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id, stems) WHERE state <> 'failed' DO NOTHING RETURNING *",
                (
                    job.id,
                    job.guild_id,
                    new.stems,
                    new.requested_by,
                    new.price,
                    new.upload_limit,
                    new.filename,
                    new.reply_application_id,
                    new.reply_token,
                    new.reply_until,
                    now,
                ),
            )
            if row is None:
                existing = await tx.fetchone(
                    "SELECT * FROM mixes WHERE job_id = ? AND stems = ? AND state <> 'failed'",
                    (job.id, new.stems),
                )
                assert existing is not None
                return MixAsked(mix_from_row(existing), False)
            mix = mix_from_row(row)
            if new.price:
                from_allowance, from_bonus = economy.spend(new.price, account.balance)
                moved = await accounts.move(
                    tx,
                    account,
                    LedgerKind.MIX_CHARGE,
                    -from_allowance,
                    -from_bonus,
                    now=now,
                    job_id=job.id,
                    mix_id=mix.id,
                    reason=f"mix of Job #{job.id}",
                )
                if moved is None:
                    refills = economy.RefillSchedule.of(settings).next_refill(
                        max(now, settings.schedule_from)
                    )
                    raise _CannotPay(MixAsked(None, False, balance=account.balance.total, refills_at=refills))
        return MixAsked(mix, True)

    async def get(self, mix_id: int) -> Mix | None:
        row = await self._db.fetchone("SELECT * FROM mixes WHERE id = ?", (mix_id,))
        return mix_from_row(row) if row else None

    async def of_job(self, job_id: int) -> list[Mix]:
        rows = await self._db.fetchall("SELECT * FROM mixes WHERE job_id = ? ORDER BY id", (job_id,))
        return [mix_from_row(row) for row in rows]

    async def place_of(self, job_id: int) -> Mix | None:
        """A mix of the job that already chose where the result's files go (the thread it opened,
        say): keeping and later mixes use the same place."""
        row = await self._db.fetchone(
            "SELECT * FROM mixes WHERE job_id = ? AND place IS NOT NULL ORDER BY id LIMIT 1", (job_id,)
        )
        return mix_from_row(row) if row else None

    async def to_do(self, now: float, limit: int = 100, *, holder: str | None = None) -> list[Mix]:
        """Mixes with work left whose next attempt is due, oldest first; with `holder`, only those
        that process may take."""
        async with self._db.reading() as tx:
            free = f" AND {_free_for(tx, self._db.shared)}" if holder is not None else ""
            rows = await tx.fetchall(
                f"SELECT * FROM mixes WHERE {_TO_DO} AND (retry_at IS NULL OR retry_at <= ?){free} "
                "ORDER BY created_at LIMIT ?",
                (now, *([holder] if holder is not None else []), limit),
            )
        return [mix_from_row(row) for row in rows]

    async def next_retry_at(self, after: float) -> float | None:
        value = await self._db.fetchone(
            f"SELECT MIN(retry_at) AS at FROM mixes WHERE {_TO_DO} AND retry_at > ?", (after,)
        )
        return None if value is None or value["at"] is None else float(value["at"])

    async def claim(self, mix_id: int, lease: Lease) -> bool:
        """Claim (or renew) the mix for `lease.holder` unless another live process holds it."""
        async with self._db.reading() as tx:
            return (
                await tx.execute(
                    f"UPDATE mixes SET claimed_by = ?, lease_until = {tx.current_time} + ? "
                    f"WHERE id = ? AND {_free_for(tx, self._db.shared)}",
                    (lease.holder, lease.seconds, mix_id, lease.holder),
                )
                == 1
            )

    async def renew(self, lease: Lease) -> int:
        async with self._db.reading() as tx:
            return await tx.execute(
                f"UPDATE mixes SET lease_until = {tx.current_time} + ? WHERE id IN "
                f"(SELECT id FROM mixes WHERE claimed_by = ? ORDER BY id{tx.for_update}) AND claimed_by = ?",
                (lease.seconds, lease.holder, lease.holder),
            )

    async def release(self, holder: str, mix_id: int | None = None) -> int:
        """Give up `holder`'s claim on one mix (a round ended), or on all (stopping cleanly)."""
        if mix_id is None:
            return await self._db.write(
                "UPDATE mixes SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?", (holder,)
            )
        return await self._db.write(
            "UPDATE mixes SET claimed_by = NULL, lease_until = NULL WHERE id = ? AND claimed_by = ?",
            (mix_id, holder),
        )

    async def working(self, mix_id: int) -> Mix:
        return await self._transition(
            "UPDATE mixes SET state = 'working' WHERE state = 'pending' AND id = ?", (mix_id,)
        )

    async def set_place(
        self, mix_id: int, place: KeepPlace, *, channel_id: int, anchor_message_id: int | None
    ) -> Mix:
        return await self._transition(
            "UPDATE mixes SET place = ?, channel_id = ?, anchor_message_id = ? WHERE id = ?",
            (place, channel_id, anchor_message_id, mix_id),
        )

    async def posting(self, mix_id: int) -> None:
        """Written, durably, before the upload: after a crash the place is read before it is sent
        again."""
        await self._db.write(
            "UPDATE mixes SET state = 'posting' WHERE id = ? AND state IN ('pending', 'working')",
            (mix_id,),
            durable=True,
        )

    async def unsent(self, mix_id: int) -> Mix:
        """What was 'posting' is not in the place: make and send it again."""
        return await self._transition(
            "UPDATE mixes SET state = 'working' WHERE state = 'posting' AND id = ?", (mix_id,)
        )

    async def posted(self, mix_id: int, message_id: int) -> Mix:
        return await self._transition(
            "UPDATE mixes SET state = 'posted', message_id = ?, finished_at = ?, failure = NULL, "
            "retry_at = NULL WHERE state IN ('pending', 'working', 'posting') AND id = ?",
            (message_id, self._db.now(), mix_id),
        )

    async def told(self, mix_id: int) -> Mix:
        """The member was told where the mix is (or can no longer be): forget the reply token."""
        return await self._transition(
            "UPDATE mixes SET told = 1, reply_token = NULL, retry_at = NULL WHERE id = ?", (mix_id,)
        )

    async def retry_later(self, mix_id: int, at: float, why: str) -> int:
        """A failure that may pass: try again at `at`. How many attempts failed so far."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE mixes SET attempts = attempts + 1, retry_at = ?, failure = ? WHERE id = ?",
                (at, why, mix_id),
            )
            attempts = await tx.scalar("SELECT attempts FROM mixes WHERE id = ?", (mix_id,))
        return int(attempts or 0)

    async def fail(self, mix_id: int, why: str) -> tuple[Mix, int]:
        """Give up on the mix and refund its price (once: the refund is unique per mix), in one
        transaction; the mix, and the credits given back (0: none were charged, or already)."""
        async with self._db.transaction() as tx:
            now = self._db.now()
            changed = await tx.execute(
                "UPDATE mixes SET state = 'failed', failure = ?, finished_at = ?, retry_at = NULL "
                "WHERE id = ? AND state IN ('pending', 'working', 'posting')",
                (why, now, mix_id),
            )
            row = await tx.fetchone("SELECT * FROM mixes WHERE id = ?", (mix_id,))
            assert row is not None
            mix = mix_from_row(row)
            back = await self._refund(tx, mix, now) if changed else 0
        return mix, back

    async def _refund(self, tx: Tx, mix: Mix, now: float) -> int:
        rows = await tx.fetchall(
            "SELECT kind, allowance_change, bonus_change, created_at FROM ledger WHERE mix_id = ?", (mix.id,)
        )
        moved = {row["kind"]: row for row in rows}
        charge = moved.get(LedgerKind.MIX_CHARGE)
        if charge is None or LedgerKind.MIX_REFUND in moved:
            return 0
        account = await accounts.read(tx, mix.guild_id, mix.requested_by)
        assert account is not None  # charged, so opened
        back = economy.refund(
            -charge["allowance_change"],
            -charge["bonus_change"],
            account.balance,
            account.period_allowance,
            refilled=account.period_start > charge["created_at"],
        )
        after = await accounts.move(
            tx,
            account,
            LedgerKind.MIX_REFUND,
            back.to_allowance,
            back.to_bonus,
            now=now,
            job_id=mix.job_id,
            mix_id=mix.id,
            reason=f"mix of Job #{mix.job_id} failed",
        )
        assert after is not None
        return back.to_allowance + back.to_bonus

    async def _transition(self, sql: str, params: Sequence[object]) -> Mix:
        """One change of the mix (its id the last parameter) and the mix as it stands after."""
        async with self._db.transaction() as tx:
            await tx.execute(sql, params)
            row = await tx.fetchone("SELECT * FROM mixes WHERE id = ?", (params[-1],))
        assert row is not None
        return mix_from_row(row)


class _CannotPay(Exception):
    def __init__(self, asked: MixAsked) -> None:
        super().__init__("cannot pay for the mix")
        self.asked = asked


def mix_from_row(row: Row) -> Mix:
    return Mix(
        id=row["id"],
        job_id=row["job_id"],
        guild_id=row["guild_id"],
        stems=row["stems"],
        state=MixState(row["state"]),
        requested_by=row["requested_by"],
        price=row["price"],
        upload_limit=row["upload_limit"],
        filename=row["filename"],
        place=KeepPlace(row["place"]) if row["place"] else None,
        channel_id=row["channel_id"],
        anchor_message_id=row["anchor_message_id"],
        message_id=row["message_id"],
        failure=row["failure"],
        attempts=row["attempts"],
        retry_at=row["retry_at"],
        reply_application_id=row["reply_application_id"],
        reply_token=row["reply_token"],
        reply_until=row["reply_until"],
        told=bool(row["told"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )
