// A static C++ program: the C++ standard library (LLVM's libc++ for musl) and LevelDB, a C++
// key-value store, from envy's package set.
#include <leveldb/db.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

static void check(const leveldb::Status &status) {
    if (!status.ok()) throw std::runtime_error(status.ToString());
}

int main(int argc, char **argv) {
    const std::string path = argc > 1 ? argv[1] : "example.db";
    try {
        leveldb::Options options;
        options.create_if_missing = true;
        leveldb::DB *raw = nullptr;
        check(leveldb::DB::Open(options, path, &raw));
        std::unique_ptr<leveldb::DB> db(raw);

        check(db->Put(leveldb::WriteOptions(), "language", "C++"));
        check(db->Put(leveldb::WriteOptions(), "greeting", "hello from leveldb"));
        std::string greeting;
        check(db->Get(leveldb::ReadOptions(), "greeting", &greeting));

        std::vector<std::string> keys;
        std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
        for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
        check(it->status());

        std::cout << "leveldb " << leveldb::kMajorVersion << '.' << leveldb::kMinorVersion
                  << ": greeting = " << greeting << "; keys:";
        for (const auto &key : keys) std::cout << ' ' << key;
        std::cout << std::endl;
    } catch (const std::exception &e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
