# Where the corpora of the recipes are (edit for your site, or set them in the environment).
# local/data.sh reads these.
MINI_CS=${MINI_CS:-downloads/mini_cs}    # synthesised locally by egs2/mini_cs/st1/local/data.sh
MINI_MULTI=${MINI_MULTI:-downloads/mini_multi}  # synthesised locally by egs2/mini_multi/st1/local/data.sh
NTUML2021=${NTUML2021:-}       # local copy of ky552/ML2021_ASR_ST (parquet shards); empty: egs2/ntuml2021 downloads it by hub name
FISHER=${FISHER:-}           # LDC2010S01 (Fisher Spanish speech: data/speech/*.sph)
FISHER_TRANSCRIPTS=${FISHER_TRANSCRIPTS:-}  # LDC2010T04 (Fisher Spanish transcripts: data/transcripts/*.tdf)
FISHER_CALLHOME_TRANSLATIONS=${FISHER_CALLHOME_TRANSLATIONS:-}  # github joshua-decoder/fisher-callhome-corpus after make (mapping/, corpus/ldc/)
CALLHOME=${CALLHOME:-}
CS_FLEURS=${CS_FLEURS:-}        # local copy of byan/cs-fleurs (read/test/metadata.jsonl, ...)
FLEURS_EN=${FLEURS_EN:-}        # google/fleurs data/en_us (train.tsv, dev.tsv, test.tsv): the English references of CS-FLEURS
COMMON_VOICE=${COMMON_VOICE:-}  # Common Voice 4 (<locale>/validated.tsv, <locale>/clips/*.mp3): the audio of CoVoST 2
COVOST2=${COVOST2:-}            # the CoVoST 2 translation TSVs (covost_v2.<locale>_en.tsv)
FLEURS=${FLEURS:-}              # google/fleurs data/ (<locale>/test.tsv, audio/test/): X->en test sets of egs2/covost2
