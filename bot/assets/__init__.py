"""Static files shipped with the bot (fonts for the printable posters; see README-fonts.txt)."""
