"""What comes out: plain records, their text and JSON, capabilities, replay snippets."""
