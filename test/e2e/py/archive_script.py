"""save/load, commit, export/import, image prune and df through docker-py."""
import docker

c = docker.from_env()
img = c.images.get("busybox")

# save and load
data = b"".join(img.save(named=True))
c.images.remove("busybox")
loaded = c.images.load(data)
assert [i.id for i in loaded] == [img.id], loaded
assert "busybox:latest" in c.images.get("busybox").tags
print("save/load ok")

# commit with changes; the image runs its new command
ctr = c.containers.run("busybox", ["sh", "-c", "echo py > /p"], detach=True, name="pyctr")
ctr.wait()
new = ctr.commit(repository="pycommit", tag="1", message="py message", author="py author",
                 changes=['CMD ["cat","/p"]'])
assert new.attrs["Comment"] == "py message" and new.attrs["Author"] == "py author", new.attrs
out = c.containers.run("pycommit:1", remove=True)
assert out == b"py\n", out
print("commit ok")

# export, import
exported = b"".join(ctr.export())
res = c.api.import_image_from_data(exported, repository="pyimport", tag="1")
out = c.containers.run("pyimport:1", ["cat", "/p"], remove=True)
assert out == b"py\n", out
print("export/import ok")

# df: the legacy shape (API < 1.52) and the current one
legacy = docker.from_env(version="1.50").api.df()
assert legacy["LayersSize"] > 0, legacy
ids = {i["Id"] for i in legacy["Images"]}
assert img.id in ids and new.id in ids, ids
assert any(x["Id"] == ctr.id for x in legacy["Containers"]), legacy["Containers"]
assert legacy["Volumes"] == [] and legacy["BuildCache"] == [], legacy
current = docker.from_env(version="1.52").api.df()
assert current["ImageUsage"]["TotalSize"] == legacy["LayersSize"], current
assert current["ImageUsage"]["TotalCount"] == len(legacy["Images"]), current
assert current["ContainerUsage"]["TotalCount"] == len(legacy["Containers"]), current
print("df ok")

# prune: the container keeps busybox; the rest goes
ctr.remove()
pruned = c.images.prune(filters={"dangling": False})
deleted = [d.get("Deleted") for d in pruned["ImagesDeleted"] if d.get("Deleted")]
assert new.id in deleted, pruned
assert pruned["SpaceReclaimed"] > 0, pruned
print("prune ok")
print("all sections passed")
