"""The database schema as an ordered list of migrations; `PRAGMA user_version` counts them."""

MIGRATIONS: tuple[str, ...] = (
    # 1: the whole first schema.
    """
    CREATE TABLE users (
        user_id     INTEGER PRIMARY KEY,
        language    TEXT NOT NULL,
        timezone    TEXT,
        source      TEXT,
        blocked_at  TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );

    -- One row per sign-up: a cancelled registration stays, a new sign-up is a new row.
    CREATE TABLE registrations (
        id                INTEGER PRIMARY KEY,
        user_id           INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        status            TEXT NOT NULL CHECK (status IN ('active', 'waiting', 'cancelled')),
        full_name         TEXT NOT NULL,
        email             TEXT NOT NULL,
        country           TEXT NOT NULL,
        organisation      TEXT,
        affiliation       TEXT NOT NULL,
        session_language  TEXT NOT NULL,
        language          TEXT NOT NULL,
        source            TEXT,
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL,
        cancelled_at      TEXT
    );
    CREATE UNIQUE INDEX registrations_one_live ON registrations(user_id)
        WHERE status != 'cancelled';
    CREATE INDEX registrations_status ON registrations(status, created_at);
    CREATE INDEX registrations_language ON registrations(status, language);
    CREATE INDEX registrations_country ON registrations(status, country);
    CREATE INDEX registrations_affiliation ON registrations(status, affiliation);
    CREATE INDEX registrations_session_language ON registrations(status, session_language);
    CREATE INDEX registrations_source ON registrations(status, source);

    -- The history of each registration: registered, waitlisted, promoted, cancelled.
    CREATE TABLE registration_events (
        id               INTEGER PRIMARY KEY,
        registration_id  INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
        kind             TEXT NOT NULL,
        at               TEXT NOT NULL
    );
    CREATE INDEX registration_events_registration ON registration_events(registration_id);

    -- Conversation states and per-user scratch data of the PTB persistence.
    CREATE TABLE conversations (
        name   TEXT NOT NULL,
        key    TEXT NOT NULL,
        state  TEXT NOT NULL,
        PRIMARY KEY (name, key)
    );
    CREATE TABLE user_data (
        user_id  INTEGER PRIMARY KEY,
        data     TEXT NOT NULL
    );

    -- Small named values, such as the last update handled.
    CREATE TABLE meta (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );

    -- Every message sent on the bot's own initiative (reminders, broadcasts, promotions).
    CREATE TABLE deliveries (
        id       INTEGER PRIMARY KEY,
        user_id  INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        kind     TEXT NOT NULL,
        status   TEXT NOT NULL
                 CHECK (status IN ('pending', 'sent', 'blocked', 'failed', 'skipped')),
        error    TEXT,
        at       TEXT NOT NULL,
        UNIQUE (user_id, kind)
    );
    CREATE INDEX deliveries_kind ON deliveries(kind, status);

    CREATE TABLE broadcasts (
        id           INTEGER PRIMARY KEY,
        admin_id     INTEGER NOT NULL,
        audience     TEXT NOT NULL,
        texts        TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('running', 'done', 'cancelled')),
        progress_chat_id     INTEGER,
        progress_message_id  INTEGER,
        created_at   TEXT NOT NULL,
        finished_at  TEXT
    );

    CREATE TABLE questions (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        language    TEXT NOT NULL,
        text        TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX questions_created ON questions(created_at);

    CREATE TABLE audit_log (
        id        INTEGER PRIMARY KEY,
        admin_id  INTEGER NOT NULL,
        action    TEXT NOT NULL,
        detail    TEXT,
        at        TEXT NOT NULL
    );
    """,
    # 2: sign-ups per hour for /stats without a temporary sort (BY_HOUR_SQL in stats.py uses
    # exactly this expression).
    """
    CREATE INDEX registrations_hour ON registrations(status, substr(created_at, 1, 13));
    """,
    # 3: start-up sends the promotion notice of each promoted registration that has no
    # 'promoted:<id>' delivery row (bot.services.promotions). Promotions from before those rows
    # were written get one here, so that an upgraded bot does not tell them again. The partial
    # index keeps that start-up query to the promoted few (~0.03 ms, not ~270 ms, for 100,000).
    """
    CREATE INDEX IF NOT EXISTS registration_events_promoted ON registration_events(registration_id)
        WHERE kind = 'promoted';
    INSERT INTO deliveries (user_id, kind, status, error, at)
    SELECT r.user_id, 'promoted:' || r.id, 'skipped', 'not recorded before schema 3', e.at
    FROM registrations r JOIN registration_events e
        ON e.registration_id = r.id AND e.kind = 'promoted'
    WHERE NOT EXISTS
        (SELECT 1 FROM deliveries d WHERE d.user_id = r.user_id AND d.kind = 'promoted:' || r.id);
    """,
    # 4: changes organisers make to the event from Telegram (/edit), applied in order over the
    # event file. `announce` tracks the notice to registrants that a change may call for; its
    # recipients are the deliveries 'event-change:<id>'. `token` is the draft's: a Confirm
    # handled twice (a restart before its update was acknowledged) saves the change once.
    """
    CREATE TABLE IF NOT EXISTS event_changes (
        id          INTEGER PRIMARY KEY,
        token       TEXT NOT NULL UNIQUE,
        field       TEXT NOT NULL,
        value       TEXT NOT NULL,
        previous    TEXT NOT NULL,
        file_value  TEXT NOT NULL,
        admin_id    INTEGER NOT NULL,
        announce    TEXT NOT NULL
                    CHECK (announce IN ('none', 'pending', 'done', 'superseded')),
        at          TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS event_changes_announce ON event_changes(announce)
        WHERE announce = 'pending';
    """,
    # 5: the city a participant typed for their zone when the zone is known by another city
    # ("Montréal" for America/Toronto), so their times are labelled with their own city.
    """
    ALTER TABLE users ADD COLUMN timezone_place TEXT;
    """,
    # 6: the updates handled in the last two days, by id, with a digest of their content, so
    # that a replay (same id, same update) is told from a new update that reuses an id after
    # Telegram restarted its ids (bot.polling). Ids recorded by schema 3's JSON list of handled
    # ids above the last one carry no digest: their id alone counts.
    """
    CREATE TABLE IF NOT EXISTS handled_updates (
        update_id   INTEGER PRIMARY KEY,
        digest      TEXT NOT NULL,
        handled_at  INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS handled_updates_at ON handled_updates(handled_at);
    INSERT OR IGNORE INTO handled_updates (update_id, digest, handled_at)
    SELECT CAST(value AS INTEGER), '', CAST(strftime('%s', 'now') AS INTEGER)
    FROM json_each((SELECT value FROM meta WHERE key = 'handled_update_ids'));
    DELETE FROM meta WHERE key = 'handled_update_ids';
    """,
    # 7: feedback after the session (bot.services.followup): one row per respondent, erased
    # with the user. `awaiting_comment` is 1 between a rating and the comment (or Skip).
    """
    CREATE TABLE IF NOT EXISTS feedback (
        user_id           INTEGER PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE,
        rating            INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
        comment           TEXT,
        awaiting_comment  INTEGER NOT NULL DEFAULT 0 CHECK (awaiting_comment IN (0, 1)),
        rated_at          TEXT NOT NULL,
        commented_at      TEXT
    );
    CREATE INDEX IF NOT EXISTS feedback_commented ON feedback(commented_at)
        WHERE comment IS NOT NULL;
    -- The feedback export joins each respondent's latest registration.
    CREATE INDEX IF NOT EXISTS registrations_user ON registrations(user_id, id);
    """,
    # 8: the calendar file sent after a promotion notice is the delivery
    # 'promoted:<id>:calendar'; start-up sends it when the notice was sent and the file has no
    # row. Files sent before those rows were written get one here, so they are not sent again.
    """
    INSERT INTO deliveries (user_id, kind, status, error, at)
    SELECT d.user_id, d.kind || ':calendar', 'skipped', 'not recorded before schema 8', d.at
    FROM deliveries d
    WHERE d.kind LIKE 'promoted:%' AND d.kind NOT LIKE '%:calendar' AND d.status = 'sent'
        AND NOT EXISTS (SELECT 1 FROM deliveries f
            WHERE f.user_id = d.user_id AND f.kind = d.kind || ':calendar');
    """,
    # 9: likewise, the calendar file sent after the notice of a new time (/edit) is the delivery
    # 'event-change:<id>:calendar'. Files sent before those rows were written get one here.
    """
    INSERT INTO deliveries (user_id, kind, status, error, at)
    SELECT d.user_id, d.kind || ':calendar', 'skipped', 'not recorded before schema 9', d.at
    FROM deliveries d JOIN event_changes c ON d.kind = 'event-change:' || c.id
    WHERE c.field = 'schedule' AND d.status = 'sent'
        AND NOT EXISTS (SELECT 1 FROM deliveries f
            WHERE f.user_id = d.user_id AND f.kind = d.kind || ':calendar');
    """,
)
