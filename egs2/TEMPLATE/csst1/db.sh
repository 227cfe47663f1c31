# Where the corpora of the recipes are (edit for your site). local/data.sh reads these.
MINI_CS=downloads/mini_cs    # synthesised locally by egs2/mini_cs/st1/local/data.sh
NTUML2021=
FISHER=
CALLHOME=
