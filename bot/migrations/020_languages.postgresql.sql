-- PostgreSQL's version of 020_languages.sql: ids BIGINT, moments DOUBLE PRECISION.
-- Languages (issue 24): the language a server's public messages speak, and the Discord languages
-- the bot last saw, for what it sends without an interaction (DMs, reminders, the audit channel).

-- A language StemBot speaks ('es-ES', 'ja'…), chosen with /quota settings language; NULL: the
-- server's own Discord language.
ALTER TABLE economy_settings ADD COLUMN language TEXT;

-- Discord's locale codes as last seen with an interaction (a member's own language is the same in
-- every server; the server's is its community language). Checked and cut by the bot.
CREATE TABLE member_languages (
    user_id BIGINT PRIMARY KEY,
    locale  TEXT   NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE server_languages (
    guild_id BIGINT PRIMARY KEY,
    locale   TEXT   NOT NULL,
    seen_at  DOUBLE PRECISION NOT NULL
);
