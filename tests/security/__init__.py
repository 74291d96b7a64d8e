"""The attack suite of issue 18: each attack carried out for real by an unprivileged user."""
