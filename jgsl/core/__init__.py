"""Sans-IO cores: gateway, grid node and client logic; `now` and messages in, messages out."""
