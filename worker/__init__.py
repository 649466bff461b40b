"""RQ jobs, delivery channels and the sweeper; runs without Flask."""
