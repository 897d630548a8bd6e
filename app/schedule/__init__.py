"""The 7-2-7 schedule: holiday calendar, phase dates, learner shifts and iCalendar feeds."""
