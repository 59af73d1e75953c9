// Engine comparison behind the durable history store's choice (docs/architecture.md, "Durable
// history"): group-committed appends spread over channels, trim by count in the same transaction,
// reads of the range after an offset. Not part of the build (it needs liblmdb-dev, which the
// server does not); run by hand:
//   g++ -O2 -std=c++20 history_engines.cpp -o engines -lsqlite3 -llmdb
//   ./engines sqlite sync; ./engines sqlite nosync; ./engines lmdb sync; ./engines lmdb nosync
#include <sqlite3.h>
#include <lmdb.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include <algorithm>
#include <filesystem>
using clk = std::chrono::steady_clock;
static double us(clk::duration d){return std::chrono::duration<double,std::micro>(d).count();}
constexpr int CH=100, KEEP=100, BATCH=64, SECONDS=6, PAY=200;
struct stats{ std::vector<double> commit, read; long appends=0, reads=0; double secs=0; };
static void report(const char* name, stats& s){
  auto pct=[](std::vector<double>& v,double p){ if(v.empty())return 0.0; std::sort(v.begin(),v.end()); return v[std::min(v.size()-1,(size_t)(p*v.size()))];};
  printf("%-16s appends/s %8.0f  commit(%d) p50 %7.0f us p99 %7.0f us | read-after(10) p50 %5.1f us p99 %5.1f us\n",
    name, s.appends/s.secs, BATCH, pct(s.commit,.5), pct(s.commit,.99), pct(s.read,.5), pct(s.read,.99));
}
static void run_sqlite(bool sync, const char* dir){
  std::string path=std::string(dir)+"/h.db"; sqlite3* db; sqlite3_open(path.c_str(),&db);
  sqlite3_exec(db,"PRAGMA journal_mode=WAL;",0,0,0);
  sqlite3_exec(db, sync?"PRAGMA synchronous=FULL;":"PRAGMA synchronous=NORMAL;",0,0,0);
  sqlite3_exec(db,"CREATE TABLE pub(ch INTEGER, off INTEGER, at INTEGER, data BLOB, PRIMARY KEY(ch,off)) WITHOUT ROWID;",0,0,0);
  sqlite3_stmt *ins,*del,*rd;
  sqlite3_prepare_v2(db,"INSERT INTO pub VALUES(?,?,?,?)",-1,&ins,0);
  sqlite3_prepare_v2(db,"DELETE FROM pub WHERE ch=? AND off<=?",-1,&del,0);
  sqlite3_prepare_v2(db,"SELECT off,data FROM pub WHERE ch=? AND off>? ORDER BY off",-1,&rd,0);
  std::vector<long> off(CH,0); std::string pay(PAY,'x'); stats s; auto t0=clk::now(); int c=0;
  while(clk::now()-t0<std::chrono::seconds(SECONDS)){
    auto a=clk::now(); sqlite3_exec(db,"BEGIN",0,0,0);
    for(int i=0;i<BATCH;++i){ c=(c+7)%CH; long o=++off[c];
      sqlite3_bind_int64(ins,1,c);sqlite3_bind_int64(ins,2,o);sqlite3_bind_int64(ins,3,o);sqlite3_bind_blob(ins,4,pay.data(),PAY,SQLITE_STATIC);sqlite3_step(ins);sqlite3_reset(ins);
      if(o>KEEP){sqlite3_bind_int64(del,1,c);sqlite3_bind_int64(del,2,o-KEEP);sqlite3_step(del);sqlite3_reset(del);} }
    sqlite3_exec(db,"COMMIT",0,0,0); s.commit.push_back(us(clk::now()-a)); s.appends+=BATCH;
    for(int r=0;r<4;++r){ int rc=(c+r*13)%CH; auto b=clk::now(); sqlite3_bind_int64(rd,1,rc);sqlite3_bind_int64(rd,2,off[rc]-10);
      int n=0; while(sqlite3_step(rd)==SQLITE_ROW){ n+=sqlite3_column_bytes(rd,1);} sqlite3_reset(rd); s.read.push_back(us(clk::now()-b)); s.reads++; }
  }
  s.secs=std::chrono::duration<double>(clk::now()-t0).count(); report(sync?"sqlite-wal fsync":"sqlite-wal nosync",s); sqlite3_close(db);
}
static void key(char* k,unsigned c,unsigned long o){ for(int i=0;i<4;++i)k[i]=(c>>(24-8*i))&255; for(int i=0;i<8;++i)k[4+i]=(o>>(56-8*i))&255; }
static void run_lmdb(bool sync, const char* dir){
  MDB_env* env; mdb_env_create(&env); mdb_env_set_mapsize(env,1ull<<30);
  mdb_env_open(env,dir,sync?0:MDB_NOSYNC,0644); MDB_dbi dbi; MDB_txn* t; mdb_txn_begin(env,0,0,&t); mdb_dbi_open(t,0,0,&dbi); mdb_txn_commit(t);
  std::vector<long> off(CH,0); std::string pay(PAY+8,'x'); stats s; auto t0=clk::now(); int c=0;
  while(clk::now()-t0<std::chrono::seconds(SECONDS)){
    auto a=clk::now(); mdb_txn_begin(env,0,0,&t);
    for(int i=0;i<BATCH;++i){ c=(c+7)%CH; long o=++off[c]; char k[12]; key(k,c,o); MDB_val kv{12,k}, dv{pay.size(),pay.data()}; mdb_put(t,dbi,&kv,&dv,0);
      if(o>KEEP){ key(k,c,o-KEEP); MDB_val dk{12,k}; mdb_del(t,dbi,&dk,0);} }
    mdb_txn_commit(t); s.commit.push_back(us(clk::now()-a)); s.appends+=BATCH;
    for(int r=0;r<4;++r){ int rc=(c+r*13)%CH; auto b=clk::now(); MDB_txn* rt; mdb_txn_begin(env,0,MDB_RDONLY,&rt); MDB_cursor* cur; mdb_cursor_open(rt,dbi,&cur);
      char k[12]; key(k,rc,off[rc]-9); MDB_val kv{12,k},dv; int n=0; int rc2=mdb_cursor_get(cur,&kv,&dv,MDB_SET_RANGE);
      while(rc2==0 && memcmp(kv.mv_data,k,4)==0){ n+=dv.mv_size; rc2=mdb_cursor_get(cur,&kv,&dv,MDB_NEXT);} mdb_cursor_close(cur); mdb_txn_abort(rt);
      s.read.push_back(us(clk::now()-b)); s.reads++; }
  }
  s.secs=std::chrono::duration<double>(clk::now()-t0).count(); report(sync?"lmdb fsync":"lmdb nosync",s); mdb_env_close(env);
}
int main(int argc,char**argv){ std::string e=argv[1]; bool sync=std::string(argv[2])=="sync";
  std::string dir="/work/.engbench-"+e+argv[2]; std::filesystem::remove_all(dir); std::filesystem::create_directories(dir);
  if(e=="sqlite") run_sqlite(sync,dir.c_str()); else run_lmdb(sync,dir.c_str());
  printf("  disk after run: %ld KB\n", (long)[&]{long t=0; for(auto&f:std::filesystem::directory_iterator(dir)) t+=f.file_size(); return t/1024;}());
  std::filesystem::remove_all(dir); }
