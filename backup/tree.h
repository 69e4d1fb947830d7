// Tree objects: one JSON document per directory, {"nodes": [...]} sorted by
// name, stored as a blob of type tree (its id is the keyed hash of the JSON,
// so an unchanged directory dedups). Node fields: docs/formats/backup-repository.md.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "backup/repository.h"

namespace dlc::backup {

// A node from lstat (and readlink, xattrs); content/subtree are filled by the caller.
nlohmann::json node_from_stat(const fs::path& path, const std::string& name, const struct stat& st,
                              std::vector<std::string>* warnings);
std::string node_name(const nlohmann::json& node);  // decodes name_hex when present
// Checks a decoded tree (Repository::read_tree does): an object with a list of
// nodes, each with a name that is one path component (not empty, ".", "..",
// and without '/' or NUL: a restore must not leave its target), unique in the
// tree, and the documented members of the documented types. Throws Errc::io.
void validate_tree(const nlohmann::json& doc, const std::string& what);
std::string node_type(const struct stat& st);

// Walks a snapshot depth-first, calling fn(path, node) for every node ("/a/b").
// fn returns false to skip a directory's children. Trees that cannot be read
// go to on_bad_tree (path, error) when given, else throw.
void walk_tree(const Repository& repo, const BlobId& root,
               const std::function<bool(const std::string& path, const nlohmann::json& node)>& fn,
               const std::function<void(const std::string& path, const std::string& error)>& on_bad_tree = {});

}  // namespace dlc::backup
