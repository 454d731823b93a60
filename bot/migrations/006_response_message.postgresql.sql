-- The id of the public message a /split answered with (see 006_response_message.sql).

ALTER TABLE jobs ADD COLUMN response_message_id BIGINT;
