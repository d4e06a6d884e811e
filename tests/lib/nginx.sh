# tests/lib/nginx.sh: the nginx configuration the tests and the bench run.
#
# nginx_conf FILE DIR MASTER WORKERS [HTTP_DIRECTIVE]: writes FILE, an nginx
# serving DIR/www on $IP_A:8080 in the foreground, master_process MASTER
# (on|off) with WORKERS workers, its error log DIR/error.log, its pid file
# DIR/nginx.pid, its temporary files in DIR/tmp (created); HTTP_DIRECTIVE
# (such as "sendfile on;") goes into its http block.
nginx_conf() {
  local file=$1 dir=$2 master=$3 workers=$4 extra=${5:-}
  mkdir -p "$dir/tmp" "$dir/www"
  cat >"$file" <<CONF
daemon off;
master_process $master;
worker_processes $workers;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  $extra
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  server { listen $IP_A:8080; root $dir/www; }
}
CONF
}
