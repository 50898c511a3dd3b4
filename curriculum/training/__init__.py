"""Training: one training loop for every stage (:mod:`.engine`), members trained one by one or
stacked (:mod:`.members`), and the CPU worker processes of ``curriculum score`` (:mod:`.launch`)."""
