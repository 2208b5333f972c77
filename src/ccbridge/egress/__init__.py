"""The one outbound-connection adapter: resolve, check, connect to exactly the checked address."""
