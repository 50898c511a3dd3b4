"""Reporting: a run's ``report.md`` (:mod:`.report`), its figures (:mod:`.figures`), and the
analyses the stages print: training orders side by side (:mod:`.order_comparison`) and image
statistics against learning order (:mod:`.statistics_relation`)."""
