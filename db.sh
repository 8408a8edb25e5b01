# Where the corpora live: one variable per corpus, each overridable from the environment,
# e.g. FLEURS=/data/fleurs ./run.sh ...  (an empty variable means: corpus not used).

# FLEURS in its on-disk layout (<root>/<lang>/{train,dev,test}.tsv, audio/<split>.tar.gz).
# The default is the bundled mini corpus, which stage 1 synthesizes there with espeak-ng.
FLEURS=${FLEURS:-downloads/mini_fleurs}
COMMONVOICE=${COMMONVOICE:-}   # Common Voice 12.0 root (<lang>/train.tsv, <lang>/clips/*.mp3)
VOXPOPULI=${VOXPOPULI:-}       # VoxPopuli ASR data (transcribed_data/<lang>/)
MLS=${MLS:-}                   # Multilingual LibriSpeech (mls_<language>/)
COVOST2=${COVOST2:-}           # CoVoST 2 TSVs (over Common Voice clips)
SPEECHGLUE=${SPEECHGLUE:-}     # SpeechGLUE dump (<task>/validation/data.csv + audio)
SPEECHXNLI=${SPEECHXNLI:-}     # SpeechXNLI sentences and audio
