"""Grade passback: a durable outbox of scores owed to the LMS, sent by workers until the LMS
accepts them (or a person must look at them)."""
