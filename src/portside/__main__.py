from portside.cli.main import main_and_exit

main_and_exit()
