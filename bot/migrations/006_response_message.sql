-- The id of the public message a /split answered with, where the result belongs. Once Discord's
-- 15-minute window for updating that message through the interaction has passed, the result is
-- posted as a reply to it, and the message itself is pointed at the reply.

ALTER TABLE jobs ADD COLUMN response_message_id INTEGER;
