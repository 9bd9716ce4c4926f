#!/usr/bin/env bash
# Rebuild every SYNTHETIC sample tile in this directory (deterministic: same seed, same
# pixels and truth on any machine with the same queuemeasure, numpy and GDAL versions).
# Usage: bash sample_tiles/make_samples.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")"

NOTE_LARS="Synthetic stand-in for the Upper Lars (Verkhny Lars) queue of 2022-09-26: the road is generated, it is NOT the surveyed A-161; no real image is used."

# 1. Synthetic Upper Lars: ~20 km queue from the checkpoint north toward Vladikavkaz, 0.5 m, UTM 38N.
queuemeasure synth upper_lars_2022-09-26_SYNTHETIC.tif \
  --road valley --origin 44.631,42.768 --toward 44.6819,43.0206 \
  --road-length-km 22 --queue-km 20 --max-gap 50 --gsd 0.5 --crs EPSG:32638 \
  --terrain valley --two-lane-fraction 0.25 --truck-fraction 0.1 \
  --trees 0.25 --buildings 0.15 --laybys 0.3 --haze 0.2 --margin 75 \
  --jpeg --jpeg-quality 85 --seed 20220926 --description "$NOTE_LARS" --overwrite

# 2. The same scene cut like Maxar's picture: the footprint ends 16.3 km along the road.
queuemeasure synth upper_lars_2022-09-26_SYNTHETIC_maxar_cut.tif \
  --road valley --origin 44.631,42.768 --toward 44.6819,43.0206 \
  --road-length-km 22 --queue-km 20 --max-gap 50 --gsd 0.5 --crs EPSG:32638 \
  --terrain valley --two-lane-fraction 0.25 --truck-fraction 0.1 \
  --trees 0.25 --buildings 0.15 --laybys 0.3 --haze 0.2 --margin 75 \
  --jpeg --jpeg-quality 85 --seed 20220926 --extent-limit-km 16.3 \
  --description "$NOTE_LARS Footprint cut 16.3 km from the checkpoint, like Maxar's picture." --overwrite

# 2b. The same scene as Sentinel-2 (10 m) and PlanetScope (3 m) see it, each with a reference
#     date without the queue (another sun, haze, gain/offset and a co-registration shift).
S2LIKE="--road valley --origin 44.631,42.768 --toward 44.6819,43.0206 \
  --road-length-km 22 --queue-km 20 --max-gap 50 --crs EPSG:32638 \
  --terrain valley --two-lane-fraction 0.25 --truck-fraction 0.1 \
  --trees 0.25 --buildings 0.15 --laybys 0.3 --haze 0.2 --margin 75 --seed 20220926"
queuemeasure synth upper_lars_2022-09-26_S2_SYNTHETIC.tif $S2LIKE \
  --sensor sentinel2 --product l2a --reference upper_lars_2022-09-21_S2_reference_SYNTHETIC.tif \
  --description "$NOTE_LARS" --overwrite
queuemeasure synth upper_lars_2022-09-26_PS_cut3km_SYNTHETIC.tif $S2LIKE --extent-limit-km 3 \
  --sensor planetscope --product l2a --reference upper_lars_2022-09-21_PS_cut3km_reference_SYNTHETIC.tif \
  --description "$NOTE_LARS Footprint cut 3 km from the checkpoint." --overwrite

# 3. Small tiles for tests and notebooks.
SMALL="--road curving --road-length-km 1.6 --queue-km 0.7 --gsd 0.5 --terrain mixed --trees 0.4 --buildings 0.3 --laybys 0.5 --two-lane-fraction 0.2 --margin 45 --jpeg --jpeg-quality 90 --seed 7"
queuemeasure synth curve_utm_SYNTHETIC.tif $SMALL --crs utm --overwrite
queuemeasure synth curve_3857_SYNTHETIC.tif $SMALL --crs EPSG:3857 --overwrite
queuemeasure synth concrete_silver_SYNTHETIC.tif \
  --road curving --road-length-km 1.2 --queue-km 0.5 --gsd 0.5 --surface concrete --colours silver \
  --terrain fields --trees 0.2 --buildings 0.2 --two-lane-fraction 0.1 --haze 0.25 --sun-elevation 55 \
  --margin 40 --jpeg --jpeg-quality 90 --seed 11 --overwrite
queuemeasure synth empty_road_SYNTHETIC.tif \
  --road serpentine --road-length-km 1.5 --queue-km 0 --gsd 0.5 --terrain valley --trees 0.4 \
  --free-per-km 2 --oncoming-per-km 2 --margin 40 --jpeg --jpeg-quality 90 --seed 3 --overwrite

# 4. The realism comparison picture (needs matplotlib-free numpy + scikit-image only).
python make_comparison.py
