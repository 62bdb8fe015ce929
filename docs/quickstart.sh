#!/usr/bin/env bash
# End-to-end tour on the built-in default: a local-directory remote, temporary git repos.
# add -> commit -> push (publish v0) -> alias -> pull by alias in a fresh clone -> lineage.
set -euo pipefail

work="$(mktemp -d "${TMPDIR:-/tmp}/gart-quickstart.XXXXXX")"
echo "== working in $work"
cd "$work"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-Quickstart}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-quick@example.com}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

git init -q --bare -b main origin.git
git init -q -b main project
cd project
git remote add origin "$work/origin.git"

echo "== gart init, remote on a local directory"
gart init
gart remote add storage "$work/remote" --default

echo "== make a small data set (300 files) and add it"
python3 - <<'PY'
import os, random
rng = random.Random(7)
for i in range(300):
    folder = f"data/class-{i % 3}"
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/img-{i:04d}.bin", "wb") as f:
        f.write(rng.randbytes(rng.randint(512, 4096)))
PY
gart add data/ --name raw-images --type dataset --description "Toy images" --metadata source=quickstart
git commit -q -m "raw images"

echo "== push: upload blobs, then publish raw-images@v0"
gart push
gart alias raw-images@v0 production
git push -q origin HEAD:main

echo "== a colleague clones and pulls by alias"
cd "$work"
git clone -q "$work/origin.git" colleague
cd colleague
gart pull raw-images@production
gart status
diff -r "$work/project/data" data && echo "identical bytes: OK"

echo "== a training run consumes the data set and produces a model (lineage)"
gart run --job-type train --name train-toy -i raw-images@production -o model=models/ -- \
    python3 -c "import os; os.makedirs('models', exist_ok=True); open('models/model.txt', 'w').write(str(len(os.listdir('data/class-0'))))"
git add .gart && git commit -q -m "train run"
gart push
gart versions model
gart lineage model@latest
gart lineage model@latest --html "$work/lineage.html"
echo "== done: open $work/lineage.html in a browser to see the graph"
