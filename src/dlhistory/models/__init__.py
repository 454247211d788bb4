"""Networks shared by two or more milestones."""
