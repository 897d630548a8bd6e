"""Self-study and follow-up work: learning items, progress per phase, self-check quizzes,
reflections and assignment submissions."""
