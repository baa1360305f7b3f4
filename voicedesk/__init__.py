"""voicedesk: shared configuration helpers and the `voicedesk` command line."""
