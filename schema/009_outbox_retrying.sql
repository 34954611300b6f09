-- 009_outbox_retrying: the pending rows that failed at least once.  A row
-- waits for its retry only after a failure (catalog_outbox_retry() counts
-- it in attempts), and the publisher must skip the later rows of such a
-- row's node and of the nodes below it.  Found through outbox_pending,
-- that meant reading every pending row at each fetch, and without fresh
-- statistics (an outbox filled by a first index a moment ago) the planner
-- turned it into a join of every pending row with every earlier one.  A
-- new row (attempts 0) is not in this index, so filling the outbox costs
-- nothing more.
CREATE INDEX outbox_retrying ON outbox (id) WHERE state = 'pending' AND attempts > 0;
