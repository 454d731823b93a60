-- Placeholder: replaced at merge by the migration of another branch.
SELECT 1;
