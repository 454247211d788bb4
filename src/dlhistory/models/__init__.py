"""Model components shared by two or more milestones."""
