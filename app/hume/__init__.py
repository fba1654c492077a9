"""Everything that talks to Hume or knows Hume's wire formats. Nothing here touches the database."""
