"""The CRM event journal: event types and how call and agent changes become events."""
