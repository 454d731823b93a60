"""What members and moderators read about credits: `/credits`, `/quota` answers, history, the
server's settings, and the audit channel's lines."""

from __future__ import annotations

import discord

from bot.models import (
    SERVER_WIDE,
    AllowanceUpdate,
    Balance,
    BlockChange,
    Correction,
    CreditSummary,
    EconomySettings,
    HistoryPage,
    KeepStems,
    LedgerEntry,
    LedgerKind,
    MixStems,
    Period,
    ReuseCharge,
    ServerBudget,
    SettingsUpdate,
)
from bot.product import LINK_LIFETIME
from bot.render.common import (
    FAILED,
    INFO,
    MODERATOR,
    PER_PERIOD,
    REFILLS,
    Message,
    api_price_list,
    credit_amount,
    credit_change,
    duration,
    listing,
    moment,
    not_before,
    number,
    pack,
    price_list,
    refusal,
    signed,
    timestamp,
)
from bot.render.text import plain


def _balance_line(summary: CreditSummary) -> str:
    return f"**{number(summary.balance)}** credit{'' if summary.balance == 1 else 's'}"


def _status_lines(summary: CreditSummary, *, own: bool) -> list[str]:
    lines: list[str] = []
    if summary.blocked:
        blocked = "🚫 **Blocked from starting splits** by a moderator"
        if summary.blocked_reason:
            blocked += f": {plain(summary.blocked_reason)}"
        if own:
            blocked += ". Ask a moderator if you think this is a mistake."
        lines.append(blocked)
    if summary.next_split_at is not None:
        lines.append(f"Next split possible {not_before(summary.next_split_at)} (cooldown).")
    return lines


def my_credits(summary: CreditSummary) -> discord.Embed:
    """`/credits`: a member's own credits in a few lines, readable on a phone. `/quota view` has
    the full detail."""
    lines = [f"{_balance_line(summary)} · {_parts_of(summary.allowance_left, summary.bonus)}"]
    lines += _status_lines(summary, own=True)
    if summary.next_refill_at is not None:
        lines.append(f"Refills to {credit_amount(summary.next_allowance)} {moment(summary.next_refill_at)}")
    else:
        lines.append("One-off allowance, no refills: a moderator can grant bonus credits.")
    lines.append(f"Splits running: {summary.jobs_in_flight} of {summary.jobs_per_member}")
    lines.append(f"\n**Prices**\n{price_list()}")
    embed = discord.Embed(
        title="Your credits", description="\n".join(lines), colour=FAILED if summary.blocked else INFO
    )
    embed.set_footer(text="Full detail: /quota view · every change: /quota history")
    return embed


def credits(summary: CreditSummary, *, member_id: int | None = None) -> discord.Embed:
    """A member's credits in full, for `/quota view` (yourself, or anyone for moderators)."""
    own = member_id is None
    lines = [_balance_line(summary) + ("" if own else f" · <@{member_id}>")]
    lines += _status_lines(summary, own=own)
    embed = discord.Embed(
        title="Your credits in this server" if own else "Credits in this server",
        description="\n".join(lines),
        colour=FAILED if summary.blocked else INFO,
    )
    embed.add_field(
        name="Allowance",
        value=f"{credit_amount(summary.allowance)} {PER_PERIOD[summary.period]}\n"
        f"{number(summary.allowance_left)} left"
        + (" this period" if summary.period is not Period.NEVER else ""),
    )
    embed.add_field(name="Bonus", value=f"{credit_amount(summary.bonus)}\nkept until spent")
    embed.add_field(
        name="Spent this period" if summary.period is not Period.NEVER else "Spent so far",
        value=credit_amount(summary.spent_this_period),
    )
    if summary.next_refill_at is not None:
        refill = moment(summary.next_refill_at)
        refill += f"\nback to {credit_amount(summary.next_allowance)}"
        if summary.next_allowance != summary.allowance:
            refill += " (new allowance)"
    else:
        refill = "Never: this server's allowance is one-off (a moderator can grant bonus credits)."
    embed.add_field(name="Next refill", value=refill, inline=False)
    embed.add_field(
        name="Splits running",
        value=f"{summary.jobs_in_flight} of {summary.jobs_per_member} at once",
        inline=False,
    )
    embed.add_field(name="Prices", value=price_list(), inline=False)
    embed.set_footer(
        text="Splits use the allowance first, then bonus. Credits are held when a split starts and "
        "returned if it fails."
    )
    return embed


def quota_refused(reason: str) -> discord.Embed:
    return refusal(reason)


def pager_refused() -> discord.Embed:
    return refusal(
        "Only whoever ran this `/quota history` can turn its pages. Run `/quota history` yourself to "
        "see your own."
    )


def _parts_of(allowance_left: int, bonus: int) -> str:
    return f"{number(allowance_left)} allowance + {number(bonus)} bonus"


def _parts(balance: Balance) -> str:
    return _parts_of(balance.allowance_left, balance.bonus)


_CORRECTION_TITLES: dict[LedgerKind, str] = {
    LedgerKind.GRANT: "Credits granted",
    LedgerKind.SET: "Balance set",
    LedgerKind.RESET: "Balance reset to the allowance",
}


def correction(kind: LedgerKind, done: Correction) -> discord.Embed:
    """The moderator's reply after a grant, set or reset."""
    before, after = done.adjustment.before, done.adjustment.after
    assert after is not None
    if kind is LedgerKind.GRANT and (done.amount or 0) < 0:
        title = "Credits taken away"
    else:
        title = _CORRECTION_TITLES[kind]
    lines = [
        f"<@{done.member_id}>: **{number(before.total)}** → **{number(after.total)}** "
        f"credit{'' if after.total == 1 else 's'} ({signed(after.total - before.total)})",
        f"Now {_parts(after)}.",
    ]
    if kind is LedgerKind.GRANT and (done.amount or 0) > 0:
        lines.append("Bonus credits are kept across refills until spent.")
    if done.reason:
        lines.append(f"Reason: {plain(done.reason)}")
    running = done.adjustment.jobs_in_flight
    if running:
        lines.append(
            f"{running} of their splits {'is' if running == 1 else 'are'} still running: "
            "credits held for a split come back if it fails."
        )
    embed = discord.Embed(title=title, description="\n".join(lines), colour=MODERATOR)
    embed.set_footer(text="Recorded in their /quota history.")
    return embed


def audit_correction(kind: LedgerKind, actor_id: int, done: Correction) -> str:
    before, after = done.adjustment.before, done.adjustment.after
    assert after is not None
    verb = {
        LedgerKind.GRANT: "granted" if (done.amount or 0) > 0 else "took",
        LedgerKind.SET: "set the balance of",
        LedgerKind.RESET: "reset the balance of",
    }[kind]
    if kind is LedgerKind.GRANT:
        what = f"<@{done.member_id}> {credit_change(done.amount or 0)}"
        if (done.amount or 0) < 0:
            what = f"{credit_amount(-(done.amount or 0))} from <@{done.member_id}>"
    else:
        what = f"<@{done.member_id}>"
    return _audit(f"<@{actor_id}> {verb} {what}: {number(before.total)} → {number(after.total)}", done.reason)


def _audit(text: str, reason: str | None = None) -> str:
    return f"🧾 {text}" + (f" · Reason: {plain(reason)}" if reason else "")


def block_change(change: BlockChange) -> discord.Embed:
    who = f"<@{change.member_id}>"
    if change.blocked:
        text = (
            f"{who} can no longer start splits here; they are told so if they try."
            if change.changed
            else f"{who} was already blocked."
        )
        if change.changed and change.reason:
            text += f"\nReason: {plain(change.reason)}"
    else:
        text = f"{who} can start splits again." if change.changed else f"{who} wasn't blocked."
    colour = MODERATOR if change.changed else INFO
    return discord.Embed(title="Blocked" if change.blocked else "Unblocked", description=text, colour=colour)


def audit_block(actor_id: int, change: BlockChange) -> str:
    verb = "blocked" if change.blocked else "unblocked"
    return _audit(f"<@{actor_id}> {verb} <@{change.member_id}> from starting splits", change.reason)


def allowance_update(update: AllowanceUpdate) -> discord.Embed:
    """The moderator's reply to `/quota allowance`: what changed, and when it takes effect."""
    per = PER_PERIOD[update.period]
    if update.role_id == SERVER_WIDE:
        title = "Server allowance changed"
        lines = [
            f"Every member: **{credit_amount(update.amount)}** {per} "
            f"(was {number(update.previous_amount)} {PER_PERIOD[update.previous_period]})."
        ]
    else:
        title = "Role allowance changed"
        if update.amount == 0:
            lines = [
                f"<@&{update.role_id}> no longer has an allowance of its own "
                f"(was {number(update.previous_amount)})."
            ]
        else:
            lines = [
                f"Members with <@&{update.role_id}>: **{credit_amount(update.amount)}** {per} "
                f"(was {number(update.previous_amount)}), or the server's allowance if that is higher."
            ]
    if update.applied_now:
        lines.append(
            "**Applied now:** everyone it concerns has their allowance refilled to the new amount; "
            "bonus credits are kept."
        )
    elif update.next_refill_at is not None:
        lines.append(
            f"**Takes effect at the next refill**, {moment(update.next_refill_at)}. "
            "Until then members keep what they have."
        )
    else:
        lines.append(
            "**New members start with it.** The allowance is one-off, so existing members keep their "
            "credits; run this again with `apply_now: True` to refill everyone now."
        )
    if update.applied_now and update.next_refill_at is not None:
        lines.append(f"Next refill: {moment(update.next_refill_at)}.")
    return discord.Embed(title=title, description="\n".join(lines), colour=MODERATOR)


def audit_allowance(actor_id: int, update: AllowanceUpdate) -> str:
    whom = (
        "the server allowance" if update.role_id == SERVER_WIDE else f"the allowance of <@&{update.role_id}>"
    )
    when = "applied now" if update.applied_now else "from the next refill"
    return _audit(
        f"<@{actor_id}> set {whom} to {credit_amount(update.amount)} {PER_PERIOD[update.period]} "
        f"(was {number(update.previous_amount)} {PER_PERIOD[update.previous_period]}), {when}"
    )


def _setting_values(s: EconomySettings) -> dict[str, str]:
    return {
        "refill time": f"{s.refill_time} {s.timezone}",
        "splits at once per member": str(s.jobs_per_member) if s.jobs_per_member else "the bot's default",
        "cooldown between splits": duration(s.cooldown_seconds),
        "moderator role": f"<@&{s.moderator_role_id}>" if s.moderator_role_id else "none",
        "audit channel": f"<#{s.audit_channel_id}>" if s.audit_channel_id else "none",
        "shared results": _REUSE_CHARGE_TEXT[s.reuse_charge],
        "keep in Discord": _KEEP_STEMS_TEXT[s.keep_stems],
        "mix stems": s.mix_stems.value,
        "mix price": credit_amount(s.mix_price) if s.mix_price else "free",
    }


_REUSE_CHARGE_TEXT = {
    ReuseCharge.FREE: "free",
    ReuseCharge.FULL: "full price",
}

_KEEP_STEMS_TEXT = {
    KeepStems.BUTTON: "members choose",
    KeepStems.ALWAYS: "always",
    KeepStems.OFF: "off",
}

KEEP_STEMS_PERMISSIONS = "Create Public Threads, Send Messages in Threads and Attach Files"
"""What StemBot needs in a channel to keep stems there (a thread on the result, files in it)."""

_KEEP_STEMS_EXPLAINED = {
    KeepStems.BUTTON: "Members choose: each result has a Keep in Discord button that posts its stems as "
    "files in a thread on the result, where they stay after the links expire.",
    KeepStems.ALWAYS: "Always: every successful split is kept in Discord, its stems posted as files in a "
    "thread on the result, where they stay after the links expire.",
    KeepStems.OFF: f"Off: no button; stems are links only, which expire after {LINK_LIFETIME.days} days.",
}


def _mix_text(s: EconomySettings) -> str:
    if s.mix_stems is MixStems.OFF:
        return "Off: no Mix stems button, and `/stems mix` is refused."
    price = f"{credit_amount(s.mix_price)} per mix" if s.mix_price else "free"
    return (
        f"On, {price}: each full split has a Mix stems button; any member picks stems to keep and "
        "StemBot posts their mix as one audio file in the result's thread."
    )


def settings_overview(update: SettingsUpdate) -> list[Message]:
    """The server's economy: allowances, refills, limits, who moderates, where actions are logged.
    Many role tiers spill over into further embeds and messages rather than being cut off."""
    overview = update.after
    s = overview.settings
    embed = discord.Embed(
        title="Credit settings for this server", colour=MODERATOR if update.changed else INFO
    )
    if update.changed:
        embed.description = "**Changed:** " + _settings_diff(update.before, s)
    embed.add_field(
        name="Allowance",
        value=f"{credit_amount(overview.server_allowance)} {PER_PERIOD[s.period]}",
        inline=False,
    )
    refills = f"{REFILLS[s.period]}"
    if s.period is not Period.NEVER:
        refills += f" at {s.refill_time} ({s.timezone})"
        if overview.next_refill_at is not None:
            refills += f"\nnext {moment(overview.next_refill_at)}"
    else:
        refills += f" (refill time {s.refill_time}, {s.timezone}, once a period is set)"
    embed.add_field(name="Refills", value=refills, inline=False)
    embed.add_field(
        name="Splits at once",
        value=f"{overview.jobs_per_member} per member" + ("" if s.jobs_per_member else " (bot default)"),
    )
    embed.add_field(name="Cooldown", value=duration(s.cooldown_seconds))
    embed.add_field(
        name="Moderators",
        value="Manage Server" + (f", or <@&{s.moderator_role_id}>" if s.moderator_role_id else ""),
    )
    embed.add_field(name="Audit channel", value=f"<#{s.audit_channel_id}>" if s.audit_channel_id else "none")
    embed.add_field(
        name="Shared results",
        value=f"{_REUSE_CHARGE_TEXT[s.reuse_charge]}: what a member pays when the same track and mode "
        "was already split (or is being split) here, so no new paid job is needed",
        inline=False,
    )
    keep = _KEEP_STEMS_EXPLAINED[s.keep_stems]
    if s.keep_stems is not KeepStems.OFF:
        keep += f" StemBot needs {KEEP_STEMS_PERMISSIONS} in the channel."
    embed.add_field(name="Keep in Discord", value=keep, inline=False)
    embed.add_field(name="Mix stems", value=_mix_text(s), inline=False)
    if overview.budget is not None:
        embed.add_field(name="Monthly StemBot budget", value=_budget_text(overview.budget), inline=False)
    embeds = [embed]
    lines = [f"<@&{role_id}>: {credit_amount(amount)}" for role_id, amount in overview.role_allowances]
    if lines:
        embeds += listing(
            "Role allowances", lines, "A member gets the highest of the server's allowance and their roles'."
        )
    return pack(embeds)


def _budget_text(budget: ServerBudget) -> str:
    """The server's monthly budget as its moderators see it: set by the bot's owner, who pays the
    API for every split; counted in the API's credits, not members' credits."""
    if budget.budget is None:
        return (
            f"No monthly limit from the bot's owner; {budget.spent} API credits used this month "
            f"({api_price_list()})."
        )
    return (
        f"**{budget.left}** of {budget.budget} API credits left this month; it renews "
        f"{timestamp(budget.renews_at, 'R')}. Each split uses the API's price ({api_price_list()}); "
        "shared results use none. When too little is left, new splits are refused until it renews. "
        "Set by the bot's owner."
    )


def _settings_diff(before: EconomySettings, after: EconomySettings) -> str:
    old, new = _setting_values(before), _setting_values(after)
    changes = [f"{name} {old[name]} → {new[name]}" for name in new if old[name] != new[name]]
    return "; ".join(changes) or "nothing"


def audit_settings(actor_id: int, update: SettingsUpdate) -> str:
    return _audit(
        f"<@{actor_id}> changed the credit settings: {_settings_diff(update.before, update.after.settings)}"
    )


HISTORY_SONG_SHOWN = 60
"""Characters of a song's title a history line shows, escapes included."""


def _history_what(entry: LedgerEntry) -> str:
    kind = entry.kind
    job = f"Job #{entry.job_id}"
    if entry.job_song:
        job += f" ({plain(entry.job_song, limit=HISTORY_SONG_SHOWN)})"
    if kind is LedgerKind.RESERVE:
        return f"{job} started (credits held)"
    if kind is LedgerKind.REFUND:
        return f"{job} failed (credits returned)"
    if kind is LedgerKind.CHARGE:
        return f"{job} done"
    if kind is LedgerKind.MIX_CHARGE:
        return f"mix of {job}"
    if kind is LedgerKind.MIX_REFUND:
        return f"mix of {job} failed (credits returned)"
    what = {
        LedgerKind.ALLOWANCE: "starting credits",
        LedgerKind.REFILL: "allowance refilled",
        LedgerKind.GRANT: "bonus granted" if entry.amount >= 0 else "credits taken away",
        LedgerKind.SET: "balance set",
        LedgerKind.RESET: "reset to allowance",
        LedgerKind.BLOCK: "blocked from splitting",
        LedgerKind.UNBLOCK: "unblocked",
    }[kind]
    if entry.reason and kind is not LedgerKind.ALLOWANCE:
        return f"{what}: {plain(entry.reason, limit=HISTORY_REASON_SHOWN)}"
    return what


HISTORY_REASON_SHOWN = 200
"""Characters of a reason a history line shows, escapes included: ten lines fit one embed even
when a reason is all Markdown characters (each shown escaped, twice as long)."""


def history_line(entry: LedgerEntry) -> str:
    who = f"<@{entry.actor_id}>" if entry.actor_id is not None else "StemBot"
    return (
        f"{timestamp(entry.created_at, 'f')} · **{signed(entry.amount)}** → {number(entry.balance_after)} · "
        f"{_history_what(entry)} · {who}"
    )


def history(page: HistoryPage, member_id: int) -> discord.Embed:
    """One page of a member's credit history, newest first."""
    if page.entries:
        body = "\n".join(history_line(entry) for entry in page.entries)
    else:
        body = "No credit changes yet."
    embed = discord.Embed(
        title="Credit history",
        description=f"<@{member_id}> · newest first\n\n{body}",
        colour=INFO,
    )
    embed.set_footer(
        text=f"Page {page.page + 1} of {page.pages} · {number(page.total)} "
        f"change{'' if page.total == 1 else 's'} · time · change → balance after · what · who"
    )
    return embed
