"""Cut a small extract of roads out of a real OSM file with pyosmium.

python extract.py SRC DST WEST SOUTH EAST NORTH HIGHWAY_CLASSES [REF]

Keeps the ways whose highway tag is one of HIGHWAY_CLASSES (comma-separated, or "*") and
whose nodes all lie in the box (nodes the source lacks are left as they are) (with REF: only the ways with that ref, and the
junction=roundabout ways touching them), their nodes (without tags or metadata), and the
road route relations that hold any of them (members trimmed to the kept ways).
"""
import sys

import osmium

src, dst = sys.argv[1], sys.argv[2]
w, s, e, n = map(float, sys.argv[3:7])
classes = set(sys.argv[7].split(","))
only_ref = sys.argv[8] if len(sys.argv) > 8 else None
loc = {o.id: (o.location.lon, o.location.lat) for o in osmium.FileProcessor(src, osmium.osm.NODE)}


def inside(nid):
    x, y = loc.get(nid, (1e9, 1e9))
    return w <= x <= e and s <= y <= n


cands = {}
for o in osmium.FileProcessor(src, osmium.osm.WAY):
    t = dict(o.tags)
    ids = [nd.ref for nd in o.nodes]
    known = [i for i in ids if i in loc]  # the source file may lack some nodes of a way
    if ("highway" in t and ("*" in classes or t["highway"] in classes) and len(known) >= 2
            and all(inside(i) for i in known)):
        cands[o.id] = (t, ids)
if only_ref:
    keep = {i: v for i, v in cands.items() if only_ref in v[0].get("ref", "").split(";")}
    used = {nid for t, ids in keep.values() for nid in ids}
    keep.update({i: v for i, v in cands.items()
                 if v[0].get("junction") == "roundabout" and used.intersection(v[1])})
else:
    keep = cands
nodes = {nid for t, ids in keep.values() for nid in ids if nid in loc}
rels = []
for o in osmium.FileProcessor(src, osmium.osm.RELATION):
    t = dict(o.tags)
    if t.get("type") == "route" and t.get("route") == "road":
        mem = [(m.type, m.ref, m.role) for m in o.members if m.type == "w" and m.ref in keep]
        if mem:
            rels.append((o.id, t, mem))
fmt = "pbf" if dst.endswith(".pbf") else "osm"
with osmium.SimpleWriter(osmium.io.File(dst, fmt + ",add_metadata=false"), overwrite=True) as wr:
    for nid in sorted(nodes):
        wr.add_node(osmium.osm.mutable.Node(id=nid, location=loc[nid]))
    for i in sorted(keep):
        wr.add_way(osmium.osm.mutable.Way(id=i, nodes=keep[i][1], tags=keep[i][0]))
    for rid, t, mem in rels:
        wr.add_relation(osmium.osm.mutable.Relation(id=rid, members=mem, tags=t))
print(len(keep), "ways", len(nodes), "nodes", len(rels), "relations")
