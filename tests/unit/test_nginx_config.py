"""The reference endpoint's nginx config, rendered without starting nginx."""

from ingestlab.stack.nginx import ECHO_MODULE, ReferenceEndpoint


def test_config_keeps_everything_in_the_work_dir(tmp_path):
    endpoint = ReferenceEndpoint(work_dir=tmp_path, port=40123, cores=(1,))
    text = endpoint.render_config()
    assert "listen 127.0.0.1:40123" in text
    assert f"pid {tmp_path / 'nginx.pid'};" in text
    assert f"client_body_temp_path {tmp_path / 'tmp'}/body;" in text
    assert f"load_module {ECHO_MODULE};" in text
    assert "${" not in text and "$$" not in text  # every placeholder filled, nginx variables kept
    assert "$request_method" in text
    assert "worker_processes 1;" in text and "access_log off;" in text
    assert endpoint.argv[-2:] == ["-g", "daemon off;"]
    assert endpoint.accept_url == "http://127.0.0.1:40123/accept"


def test_bodies_up_to_128_kib_stay_in_memory(tmp_path):
    text = ReferenceEndpoint(work_dir=tmp_path, port=40124).render_config()
    # Equal limits: a body that would not fit the buffer is refused (413), never spooled to disk.
    assert "client_body_buffer_size 128k;" in text
    assert "client_max_body_size 128k;" in text
