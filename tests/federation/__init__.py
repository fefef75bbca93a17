"""Federation: catalogue nodes harvesting each other and bad peers, as processes on loopback."""
